"""`dlens-ingest export`: a training-dataset subset (period, domain, species) is a valid store of its own,
with the source's values in its cells, its own statistics and a README; bad requests are refused."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from dlens.common.grid import parse_domain
from dlens.common.layout import ANALYSIS, FORECASTS, METEO, REANALYSIS_VALIDATED, Status
from dlens.common.reader import StoreReader
from dlens.common.schema import validate_store
from dlens.common.store import open_dataset, open_store
from dlens.common.writer import StoreSpec
from dlens.ingest.cli import main
from dlens.ingest.synthetic_ingest import SyntheticRequest, ingest_synthetic

TINY = StoreSpec(parse_domain("tiny"), (0, 6, 12, 24), (0,))
CROP = "45.05,45.95,8.05,9.55"  # 10 × 16 cells inside the tiny domain


@pytest.fixture(scope="module")
def source(tmp_path_factory, ray_cluster) -> str:
    store = str(tmp_path_factory.mktemp("export") / "source.zarr")
    ingest_synthetic(
        SyntheticRequest(store, TINY, datetime(2025, 7, 1), 4, ("o3", "no2", "so2", "pm10"), seed=5)
    )
    return store


def test_a_subset_is_a_valid_store_with_the_source_values(source, tmp_path, capsys):
    out = str(tmp_path / "subset.zarr")
    argv = ["--no-progress", "export", "--store", source, "--out", out, "--start", "2025-07-02", "--days", "2",
            "--species", "o3,pm10", "--domain", CROP]  # fmt: skip
    assert main(argv) == 0
    assert f"export: {out} (2 runs, 49 analysis hours, 2 meteo runs" in capsys.readouterr().out
    assert validate_store(out, deep=True) == []
    src, sub = StoreReader(source), StoreReader(out)
    crop = parse_domain(CROP)
    assert sub.spec.domain.shape == crop.shape == (10, 16)
    i0, j0 = crop.i0 - src.spec.domain.i0, crop.j0 - src.spec.domain.j0
    window = (slice(None), slice(None), slice(i0, i0 + 10), slice(j0, j0 + 16))
    for run in (np.datetime64("2025-07-02T00", "h"), np.datetime64("2025-07-03T00", "h")):
        for species in ("o3", "pm10"):
            np.testing.assert_array_equal(
                sub.members(species, run, 12), src.members(species, run, 12)[window]
            )
            np.testing.assert_array_equal(
                sub.member_presence(species, run), src.member_presence(species, run)
            )
        assert not sub.member_presence("no2", run).any()  # left out: PENDING
    valid = np.datetime64("2025-07-04T00", "h")  # the last run + 24 h
    np.testing.assert_array_equal(
        sub.analysis("o3", valid), src.analysis("o3", valid)[:, i0 : i0 + 10, j0 : j0 + 16]
    )
    assert sub.analysis("no2", valid) is None
    reanalysis_src, reanalysis_sub = (
        open_dataset(s, REANALYSIS_VALIDATED)["o3"].sel(time=valid) for s in (source, out)
    )
    np.testing.assert_array_equal(reanalysis_sub.values, reanalysis_src.values[:, i0 : i0 + 10, j0 : j0 + 16])
    fc = open_dataset(out, FORECASTS)
    assert list(fc["run"].values.astype("datetime64[D]").astype(str)) == ["2025-07-02", "2025-07-03"]
    assert set(np.unique(fc["ingest_status"].sel(species="no2").values)) == {Status.PENDING}
    norm = fc.attrs["normalisation"]
    assert set(norm) == {"o3", "pm10"} and norm["o3"]["n"] == int(np.isfinite(fc["o3"].values).sum())
    assert (open_dataset(out, METEO)["ingest_status"].values == Status.COMPLETE).all()
    assert open_dataset(out, ANALYSIS).sizes["time"] == 49
    attrs = open_store(out).attrs.asdict()
    assert attrs["export"]["source"] == source and attrs["export"]["species"] == ["o3", "pm10"]
    assert "synthetic" in attrs  # the source's provenance travels with it
    readme = (tmp_path / "subset.zarr" / "README.md").read_text()
    assert "2 daily 00 UTC runs" in readme and "o3 (ozone), pm10" in readme and "ingest_status" in readme


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "2024-01-01", "--days", "2"], "no forecast run"),
        (["--start", "2025-07-01", "--days", "1", "--domain", "40.05,41.05,8.05,9.05"], "is not inside"),
        (["--start", "2025-07-01", "--days", "0"], "--days 0"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(source, tmp_path, capsys, extra, message):
    out = tmp_path / "nothing.zarr"
    assert main(["--no-progress", "export", "--store", source, "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_an_existing_store_is_never_overwritten(source, capsys):
    assert main(["export", "--store", source, "--out", source, "--start", "2025-07-01", "--days", "1"]) == 2
    assert "exists" in capsys.readouterr().err
