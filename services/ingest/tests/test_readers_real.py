"""CAMS readers against the real public CAMS files in shared/data/cams-samples (see its SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from dlens.ingest.readers import IngestError, check_on_grid, inspect_files, open_normalised
from dlens.ingest.readers.netcdf import open_raw
from dlens.testing.plugin import require_cams_samples

SAMPLES = require_cams_samples(module_level=True)
MILAN = SAMPLES / "Assimila__HARMONIA_AQ" / "Milan"
JOSEKI = SAMPLES / "rayference__joseki"


def _one(path: Path, tmp_path: Path):
    good, bad = inspect_files([path], tmp_path)
    assert not bad, [str(e) for e in bad]
    assert len(good) == 1
    return good[0]


def _refused(paths: list[Path], tmp_path: Path) -> list[str]:
    good, bad = inspect_files(paths, tmp_path)
    assert good == []
    messages = [str(e) for e in bad]
    assert messages and all("\n" not in m for m in messages)
    return messages


@pytest.mark.parametrize("year", [2018, 2021])
def test_milan_series_equal_raw_netcdf4(year, tmp_path):
    path = MILAN / f"cams_Eur_AQ_reanalysis_{year}.nc"
    cf = _one(path, tmp_path)
    assert cf.kind == "reanalysis" and cf.member == "ensemble" and cf.run is None and cf.leads == ()
    assert cf.target == {2018: "validated", 2021: "interim"}[year]  # from the Title (SOURCES.md)
    assert cf.species == ("o3", "no2", "so2", "pm10") and cf.levels == (0,)
    assert len(cf.times) == 8760 and cf.times[0].year == year and cf.times[-1].hour == 23
    ds = open_normalised(cf)
    assert ds.o3.dims == ("time", "level", "latitude", "longitude") and ds.o3.shape == (8760, 1, 1, 1)
    with netCDF4.Dataset(path) as nc:  # auto mask-and-scale: -999 and NaN fills both masked
        for sp in cf.species:
            raw = np.ma.filled(nc.variables[sp][:].astype(np.float32), np.nan)
            got = ds[sp].values[:, 0, 0, 0]
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, raw)


def test_milan_2018_cell_is_off_the_grid_but_readable(tmp_path):
    cf = _one(MILAN / "cams_Eur_AQ_reanalysis_2018.nc", tmp_path)
    assert cf.latitude.tolist() == [45.5] and cf.longitude.tolist() == [9.2]
    assert not cf.on_grid
    with pytest.raises(
        IngestError, match=r"cams_Eur_AQ_reanalysis_2018.nc: cell 45.5N 9.2E is not on the MACCGE01"
    ):
        check_on_grid(cf)


def test_milan_2020_leap_year_on_grid(tmp_path):
    cf = _one(MILAN / "cams_Eur_AQ_reanalysis_2020.nc", tmp_path)
    assert len(cf.times) == 8784 and cf.on_grid and cf.target == "validated"
    check_on_grid(cf)
    assert cf.latitude.tolist() == [45.45] and cf.longitude.tolist() == [9.15]
    ds = open_normalised(cf)
    assert ds.sizes["time"] == 8784 and str(ds.time.values[-1]).startswith("2020-12-31T23")


def test_milan_2021_mixed_fill_values(tmp_path):
    """2021 mixes _FillValue NaN (o3, no2, ...) and -999 with missing_value (nh3, no, ...): all decoded."""
    path = MILAN / "cams_Eur_AQ_reanalysis_2021.nc"
    raw = open_raw(path)
    assert np.isnan(raw["o3"].encoding["_FillValue"]) and raw["nh3"].encoding["_FillValue"] == -999.0
    assert not np.any(raw["nh3"].values == -999.0)
    with netCDF4.Dataset(path) as nc:
        np.testing.assert_array_equal(raw["nh3"].values, np.ma.filled(nc.variables["nh3"][:], np.nan))


def test_sofia_all_nan_refused(tmp_path):
    (msg,) = _refused(
        [SAMPLES / "Assimila__HARMONIA_AQ" / "Sofia" / "cams_Eur_AQ_reanalysis_2020.nc"], tmp_path
    )
    assert msg.startswith("cams_Eur_AQ_reanalysis_2020.nc: ")
    assert "NaN" in msg and "o3" in msg and "pm10" in msg


def test_milan_2019_empty_no2_refused(tmp_path):
    (msg,) = _refused([MILAN / "cams_Eur_AQ_reanalysis_2019.nc"], tmp_path)
    assert msg.startswith("cams_Eur_AQ_reanalysis_2019.nc: ") and "no2" in msg and "NaN" in msg


def test_packed_int16_decoded_by_open_helper():
    path = JOSEKI / "232f85b4-b3e9-47a7-a52d-9f955c38b9f6.nc"
    ds = open_raw(path)
    with netCDF4.Dataset(path) as nc:
        for name in ("gtco3", "tcwv"):
            var = nc.variables[name]
            var.set_auto_maskandscale(False)
            packed = var[:]
            assert packed.dtype == np.int16
            expected = packed * var.scale_factor + var.add_offset
            np.testing.assert_allclose(ds[name].values, expected, rtol=0, atol=1e-12)


def test_global_eac4_file_refused_as_non_regional(tmp_path):
    (msg,) = _refused([JOSEKI / "232f85b4-b3e9-47a7-a52d-9f955c38b9f6.nc"], tmp_path)
    assert msg.startswith("232f85b4-b3e9-47a7-a52d-9f955c38b9f6.nc: ")
    assert "non-regional" in msg and "0.75" in msg


def test_joseki_zips_refused(tmp_path):
    zips = sorted(JOSEKI.glob("*.zip"))
    assert len(zips) == 4
    messages = _refused(zips, tmp_path)
    assert len(messages) == 8  # two NetCDF members per zip, each named zip:member
    for m in messages:
        assert m.split(": ", 1)[0].split(":")[1] in ("levtype_ml.nc", "levtype_sfc.nc")
        assert "not a CAMS regional air-quality file" in m


def test_egg4_grib_refused(tmp_path):
    (msg,) = _refused([SAMPLES / "ecmwf__cfgrib" / "cams-egg4-monthly.grib"], tmp_path)
    assert msg.startswith("cams-egg4-monthly.grib: ")
    try:
        import eccodes  # noqa: F401
    except (ImportError, RuntimeError):
        assert "GRIB support unavailable" in msg
    else:
        assert "not CAMS regional air quality" in msg and "2t" in msg
