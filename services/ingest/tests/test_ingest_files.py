"""`dlens-ingest files` end to end: good files land, each bad one gets one line and leaves no trace."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from dlens.common.layout import (
    ANALYSIS,
    CAMS_ENSEMBLE_PRODUCT,
    FORECASTS,
    REANALYSIS_INTERIM,
    REANALYSIS_VALIDATED,
    Status,
)
from dlens.common.reader import StoreReader
from dlens.common.schema import validate_store
from dlens.common.species import MEMBERS
from dlens.common.store import open_dataset
from dlens.ingest.cli import main
from dlens.testing.plugin import tree_digest

sys.path.insert(0, str(Path(__file__).parent))
import cams_files as F

MODEL_NAMES = [
    "CHIMERE",
    "DEHM",
    "EMEP",
    "EURAD-IM",
    "GEM-AQ",
    "LOTOS-EUROS",
    "MATCH",
    "MINNI",
    "MOCAGE",
    "MONARCH",
    "SILAM",
]
MILAN_2020 = "Assimila__HARMONIA_AQ/Milan/cams_Eur_AQ_reanalysis_2020.nc"
GLOBAL_EAC4 = "rayference__joseki/232f85b4-b3e9-47a7-a52d-9f955c38b9f6.nc"


def good_files(directory: Path) -> list[Path]:
    """A zip of ten member forecasts, one loose member, the ENSEMBLE forecast and analysis of 2020-01-01."""
    directory.mkdir(parents=True, exist_ok=True)
    members = [F.write_ads(directory / f"{m.lower()}.nc", model=m, steps=range(7)) for m in MODEL_NAMES]
    with zipfile.ZipFile(directory / "ads-forecast.zip", "w") as zf:
        for path in members[:-1]:
            zf.write(path, path.name)
            path.unlink()
    ensemble = F.write_ads(directory / "ens_fc.nc", model="ENSEMBLE", steps=range(7))
    analysis = F.write_ads(directory / "ens_an.nc", model="ENSEMBLE", kind="analysis")
    return [directory / "ads-forecast.zip", members[-1], ensemble, analysis]


def bad_files(directory: Path, samples: Path) -> dict[str, tuple[Path, str]]:
    """Eleven kinds of bad input, each with a fragment its error line must contain."""
    directory.mkdir(parents=True, exist_ok=True)
    truncated = F.write_ads(directory / "truncated.nc", fmt="NETCDF4", model="MATCH", date="20200102")
    truncated.write_bytes(truncated.read_bytes()[:2000])
    text = directory / "notes.nc"
    text.write_text("station,o3\nmilan,41\n")
    nan = F.expected("o3", 4, (0,))
    nan[1] = np.nan
    negative = F.expected("no2", 4, (0,))
    negative[2, 0, 1, 1] = -7.0
    return {
        "truncated": (truncated, "truncated"),
        "not netcdf": (text, "not a NetCDF or GRIB file"),
        "wrong grid": (F.write_ads(directory / "offgrid.nc", lat=np.round(45.07 + 0.1 * np.arange(5), 2)), "wrong grid"),
        "unknown species": (F.write_ads(directory / "co.nc", species=("o3",), variables={"o3": "co_conc"}), "unknown species"),
        "unknown member": (F.write_ads(directory / "wrf.nc", model="WRF-CHEM"), "unknown member"),
        "wrong units": (F.write_ads(directory / "ppb.nc", units="ppb"), "wrong units"),
        "duplicated times": (F.write_ads(directory / "dup.nc", steps=[0, 1, 1, 2]), "duplicated lead times"),
        "out of period": (F.write_ads(directory / "late.nc", period="20200101+[0H_24H]", steps=[0, 12, 30]), "lead time 30 h"),
        "all NaN": (F.write_ads(directory / "nan.nc", species=("o3",), data={"o3": nan}), "all NaN"),
        "negative": (F.write_ads(directory / "negative.nc", species=("no2",), data={"no2": negative}), "negative"),
        "global product": (samples / GLOBAL_EAC4, "non-regional"),
    }  # fmt: skip


def arrays(store: Path) -> dict[str, str]:
    """Digest of every chunk (not metadata) of a local store."""
    return tree_digest(store, include=lambda p: "/c/" in str(p) or p.name == "c")


def test_good_files_land_with_values_and_status(tmp_path, ray_cluster):
    store = tmp_path / "cams.zarr"
    paths = [str(p) for p in good_files(tmp_path / "in")]
    assert main(["--no-progress", "files", "--store", str(store), *paths]) == 0
    assert validate_store(str(store), deep=True) == []
    fc = open_dataset(str(store), FORECASTS)
    assert list(fc["lead"].values) == list(range(7)) and [str(r)[:10] for r in fc["run"].values] == [
        "2020-01-01"
    ]
    want = F.expected("o3", 7, (0,))
    for m in MEMBERS:
        np.testing.assert_array_equal(fc["o3"].sel(member=m).isel(run=0).values, want)
    status = fc["ingest_status"]
    assert (status.sel(species=["o3", "no2"]).values == Status.COMPLETE).all()
    assert (status.sel(species=["so2", "pm10"]).values == Status.PENDING).all()
    ens = open_dataset(str(store), CAMS_ENSEMBLE_PRODUCT)
    np.testing.assert_array_equal(ens["no2"].isel(run=0).values, F.expected("no2", 7, (0,)))
    an = open_dataset(str(store), ANALYSIS)
    assert an.sizes["time"] == 24 and (an["ingest_status"].sel(species="o3").values == Status.COMPLETE).all()
    np.testing.assert_array_equal(an["o3"].values, F.expected("o3", 24, (0,)))

    before = tree_digest(store)  # re-ingesting the same files: same bytes, no duplicated runs or times
    assert main(["--no-progress", "files", "--store", str(store), *paths]) == 0
    assert tree_digest(store) == before


@pytest.mark.slow
def test_bad_files_are_refused_one_line_each_and_leave_the_store_unchanged(
    tmp_path, ray_cluster, cams_samples
):
    good = good_files(tmp_path / "good")
    bad = bad_files(tmp_path / "bad", cams_samples)
    assert len(bad) >= 10
    cli = [sys.executable, "-m", "dlens.ingest.cli", "--no-progress", "files", "--store"]

    clean = tmp_path / "clean.zarr"
    subprocess.run([*cli, str(clean), *map(str, good)], check=True, capture_output=True)

    mixed = tmp_path / "mixed.zarr"
    paths = [str(p) for p, _ in bad.values()]
    done = subprocess.run(
        [*cli, str(mixed), *paths[:5], *map(str, good), *paths[5:]], capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad), done.stderr
    for kind, (path, fragment) in bad.items():
        (line,) = [e for e in errors if path.name in e]
        assert fragment in line, (kind, line)
    assert "Traceback" not in done.stderr
    # the good files of the same call landed exactly as without the bad ones
    assert arrays(mixed) == arrays(clean)

    before = tree_digest(mixed)
    again = subprocess.run([*cli, str(mixed), *paths], capture_output=True, text=True)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert tree_digest(mixed) == before


def test_real_reanalysis_series_lands_in_a_one_cell_store(tmp_path, ray_cluster, cams_samples):
    """The real validated reanalysis of Milan 2020 lands in reanalysis/validated, not in the analysis; an interim
    reanalysis file of the same cell (the factory's, as the real interim sample is off the grid) lands in
    reanalysis/interim."""
    store = tmp_path / "milan.zarr"
    milan = cams_samples / MILAN_2020
    interim = F.write_reanalysis(
        tmp_path / "interim.nc", month="2021-02", hours=range(24), lat=np.array([45.45]), lon=np.array([9.15])
    )
    assert main(["--no-progress", "files", "--store", str(store), str(milan), str(interim)]) == 0
    assert validate_store(str(store), deep=True) == []
    assert open_dataset(str(store), ANALYSIS).sizes["time"] == 0
    got = open_dataset(str(store), REANALYSIS_INTERIM)
    assert got.sizes["time"] == 24 and (got["ingest_status"].values == Status.COMPLETE).all()
    np.testing.assert_array_equal(got["o3"].values[:, 0], F.expected("o3", 24, (0,), [45.45], [9.15])[:, 0])
    an = open_dataset(str(store), REANALYSIS_VALIDATED)
    assert an.sizes == {"time": 8784, "level": 1, "latitude": 1, "longitude": 1, "species": 4, "stat": 7}
    with netCDF4.Dataset(milan) as nc:
        for sp in ("o3", "no2", "so2", "pm10"):
            raw = np.asarray(nc[sp][:], dtype=np.float32)
            np.testing.assert_array_equal(an[sp].values[:, 0, 0, 0], raw)
    assert an.attrs["normalisation"]["o3"]["n"] == 8784


def test_unusable_paths_exit_2_with_a_message(tmp_path, capsys):
    assert main(["files", "--store", str(tmp_path / "s.zarr"), str(tmp_path / "missing.nc")]) == 2
    assert "missing.nc: no such file" in capsys.readouterr().err


def test_reingest_interrupted_part_way_leaves_its_cells_pending_and_a_rerun_commits_them(
    tmp_path, ray_cluster
):
    """A re-ingest over committed cells resets them to PENDING before writing: a failure part-way (here a
    store chunk that cannot be written, at lead 4 and at hour 12) never leaves old and new leads mixed
    under COMPLETE; the cells it did not touch stay committed, and a re-run commits the new data."""
    store, v1, v2 = tmp_path / "cams.zarr", tmp_path / "v1", tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    first = [F.write_ads(v1 / f"{m}.nc", model=m, steps=range(7)) for m in ("CHIMERE", "EMEP")]
    first.append(F.write_ads(v1 / "an.nc", model="ENSEMBLE", kind="analysis"))
    assert main(["--no-progress", "files", "--store", str(store), *map(str, first)]) == 0
    new = {sp: 2 * F.expected(sp, 7, (0,)) for sp in ("o3", "no2")}
    new_an = {sp: 3 * F.expected(sp, 24, (0,)) for sp in ("o3", "no2")}
    second = [
        F.write_ads(v2 / "chimere.nc", model="CHIMERE", steps=range(7), data=new),
        F.write_ads(v2 / "an.nc", model="ENSEMBLE", kind="analysis", data=new_an),
    ]
    blocked = [store / "forecasts/o3/c/0/4/0/0/0/0", store / "analysis/o3/c/12/0/0/0"]
    for chunk in blocked:  # a store that fails part-way: these chunks cannot be written
        chunk.rename(chunk.with_name("aside"))
        chunk.mkdir()
    assert main(["--no-progress", "files", "--store", str(store), *map(str, second)]) == 1

    fc, an = open_dataset(str(store), FORECASTS), open_dataset(str(store), ANALYSIS)
    chimere, emep = MEMBERS.index("chimere"), MEMBERS.index("emep")
    status = fc["ingest_status"].isel(run=0)
    assert status.isel(member=chimere).sel(species="o3") == Status.PENDING
    assert status.isel(member=chimere).sel(species="no2") == Status.COMPLETE  # its unit did not fail
    assert (status.isel(member=emep).sel(species=["o3", "no2"]) == Status.COMPLETE).all()
    assert (an["ingest_status"].sel(species="o3") == Status.PENDING).all()

    for chunk in blocked:
        chunk.rmdir()
        chunk.with_name("aside").rename(chunk)
    assert main(["--no-progress", "files", "--store", str(store), *map(str, second)]) == 0
    fc, an = open_dataset(str(store), FORECASTS), open_dataset(str(store), ANALYSIS)
    assert (
        fc["ingest_status"].isel(run=0, member=[chimere, emep]).sel(species=["o3", "no2"]) == Status.COMPLETE
    ).all()
    np.testing.assert_array_equal(fc["o3"].isel(run=0, member=chimere).values, new["o3"])
    np.testing.assert_array_equal(fc["o3"].isel(run=0, member=emep).values, F.expected("o3", 7, (0,)))
    assert (an["ingest_status"].sel(species=["o3", "no2"]) == Status.COMPLETE).all()
    np.testing.assert_array_equal(an["o3"].values, new_an["o3"])
    assert validate_store(str(store), deep=True) == []


def test_every_level_of_multi_level_files_lands(tmp_path, ray_cluster, capsys):
    """A member forecast and the ENSEMBLE analysis of three levels (written 100, 0, 50 m) land at every level
    of a store created from them (levels ascending), each level's values where they belong; a store that
    keeps two of them takes those two; one that keeps a level the files lack refuses them."""
    levels = (100.0, 0.0, 50.0)
    order = np.argsort(levels)  # file positions of 0, 50, 100 m
    paths = [
        str(F.write_ads(tmp_path / "chimere.nc", model="CHIMERE", steps=range(4), levels=levels)),
        str(F.write_ads(tmp_path / "an.nc", model="ENSEMBLE", kind="analysis", levels=levels)),
    ]
    store = tmp_path / "levels.zarr"
    assert main(["--no-progress", "files", "--store", str(store), *paths]) == 0
    assert validate_store(str(store), deep=True) == []
    fc, an = open_dataset(str(store), FORECASTS), open_dataset(str(store), ANALYSIS)
    assert list(fc["level"].values) == [0, 50, 100] and list(an["level"].values) == [0, 50, 100]
    for sp in ("o3", "no2"):
        want = F.expected(sp, 4, levels)[:, order]
        np.testing.assert_array_equal(fc[sp].isel(run=0).sel(member="chimere").values, want)
        np.testing.assert_array_equal(an[sp].values, F.expected(sp, 24, levels)[:, order])
    reader = StoreReader(str(store))
    hour = np.datetime64("2020-01-01T05", "h")
    np.testing.assert_array_equal(reader.analysis("no2", hour, level=2), F.expected("no2", 24, levels)[5, 0])
    assert an.attrs["normalisation"]["o3"]["n"] == 24 * 3 * len(F.LAT) * len(F.LON)

    subset = tmp_path / "subset.zarr"
    assert main(["--no-progress", "files", "--store", str(subset), "--levels", "0,100", *paths]) == 0
    fc = open_dataset(str(subset), FORECASTS)
    assert list(fc["level"].values) == [0, 100]
    np.testing.assert_array_equal(
        fc["o3"].isel(run=0).sel(member="chimere").values, F.expected("o3", 4, levels)[:, [1, 0]]
    )
    capsys.readouterr()
    lacking = tmp_path / "lacking.zarr"
    assert main(["--no-progress", "files", "--store", str(lacking), "--levels", "0,250", *paths]) == 1
    assert "lacks levels [250] m" in capsys.readouterr().err
