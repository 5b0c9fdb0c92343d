"""CAMS readers on small files from the factory: round trips, orientation, laziness, and bad files."""

from __future__ import annotations

import sys
import tracemalloc
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import cams_files as F

from dlens.ingest.readers import IngestError, inspect_files, open_normalised


def _ok(paths, tmp_path):
    good, bad = inspect_files([Path(p) for p in paths], tmp_path / "work")
    assert not bad, [str(e) for e in bad]
    return good


def _refused(path: Path, tmp_path: Path, *words: str, name: str | None = None) -> str:
    good, bad = inspect_files([path], tmp_path / "work")
    assert good == [] and len(bad) == 1, ([g.source for g in good], [str(e) for e in bad])
    err = bad[0]
    assert isinstance(err, IngestError)
    msg = str(err)
    assert "\n" not in msg and "Traceback" not in msg
    assert msg.startswith(f"{name or path.name}: "), msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


# --- round trips ---------------------------------------------------------------------------------


def test_forecast_round_trip_north_south_flipped(tmp_path):
    (cf,) = _ok([F.write_ads(tmp_path / "chimere.nc", species=("o3", "no2", "so2", "pm10"))], tmp_path)
    assert cf.kind == "forecast" and cf.member == "chimere" and cf.run == datetime(2020, 1, 1)
    assert cf.leads == (0, 1, 2, 3) and cf.times == () and cf.levels == (0,)
    assert cf.species == ("o3", "no2", "so2", "pm10") and cf.on_grid
    np.testing.assert_array_equal(cf.latitude, F.LAT)
    ds = open_normalised(cf)
    assert ds.o3.dims == ("lead", "level", "latitude", "longitude") and ds.o3.dtype == np.float32
    assert ds.lead.values.tolist() == [0, 1, 2, 3] and ds.latitude.values[0] < ds.latitude.values[-1]
    for sp in cf.species:
        np.testing.assert_array_equal(ds[sp].values, F.expected(sp, 4, (0,)))
    assert ds.attrs["member"] == "chimere" and ds.attrs["sha256"] == cf.sha256


def test_longitude_0_360_wraps_to_ascending_minus180_180(tmp_path):
    path = F.write_ads(tmp_path / "wrap.nc", lon=F.LON_WRAP, lon360=True)
    (cf,) = _ok([path], tmp_path)
    np.testing.assert_allclose(cf.longitude, F.LON_WRAP)
    assert np.all(np.diff(cf.longitude) > 0) and cf.on_grid
    ds = open_normalised(cf)
    np.testing.assert_array_equal(ds.o3.values, F.expected("o3", 4, (0,), F.LAT, F.LON_WRAP))
    # one lead, one level, a longitude slice across the meridian
    part = ds.o3.isel(lead=2, level=0, longitude=slice(2, 6)).values
    np.testing.assert_array_equal(part, F.expected("o3", 4, (0,), F.LAT, F.LON_WRAP)[2, 0, :, 2:6])


def test_packed_int16_forecast_is_decoded(tmp_path):
    (cf,) = _ok([F.write_ads(tmp_path / "p.nc", packed=True, fmt="NETCDF4")], tmp_path)
    ds = open_normalised(cf)
    np.testing.assert_allclose(ds.no2.values, F.expected("no2", 4, (0,)), atol=1e-3)
    assert ds.no2.dtype == np.float32


def test_levels_and_unsorted_leads(tmp_path):
    path = F.write_ads(tmp_path / "l.nc", steps=[3, 0, 2, 1], levels=(50.0, 0.0), model="LOTOS-EUROS")
    (cf,) = _ok([path], tmp_path)
    assert cf.member == "lotos" and cf.leads == (0, 1, 2, 3) and cf.levels == (0, 50)
    ds = open_normalised(cf)
    raw = F.expected("o3", 4, (50, 0))  # as written: time index = position in `steps`, level order 50, 0
    np.testing.assert_array_equal(ds.o3.sel(lead=3, level=50).values, raw[0, 0])
    np.testing.assert_array_equal(ds.o3.sel(lead=0, level=0).values, raw[1, 1])


def test_analysis_round_trip(tmp_path):
    (cf,) = _ok([F.write_ads(tmp_path / "a.nc", kind="analysis", model="EURAD-IM")], tmp_path)
    assert cf.kind == "analysis" and cf.member == "euradim" and cf.run is None and cf.leads == ()
    assert cf.times[0] == datetime(2020, 1, 1, 0) and cf.times[-1] == datetime(2020, 1, 1, 23)
    ds = open_normalised(cf)
    assert ds.o3.dims == ("time", "level", "latitude", "longitude")
    np.testing.assert_array_equal(ds.o3.values, F.expected("o3", 24, (0,)))


def test_multi_day_analysis(tmp_path):
    path = F.write_ads(tmp_path / "a2.nc", kind="analysis", period="20200101-20200102+[0H_23H]",
                       steps=range(48), model="ENSEMBLE")  # fmt: skip
    (cf,) = _ok([path], tmp_path)
    assert len(cf.times) == 48 and cf.times[-1] == datetime(2020, 1, 2, 23) and cf.member == "ensemble"


def test_cf_time_variant(tmp_path):
    (cf,) = _ok([F.write_ads(tmp_path / "cf.nc", cf_time=True, model="GEM-AQ")], tmp_path)
    assert cf.member == "gemaq" and cf.run == datetime(2020, 1, 1) and cf.leads == (0, 1, 2, 3)


def test_reanalysis_round_trip(tmp_path):
    (cf,) = _ok([F.write_reanalysis(tmp_path / "r.nc")], tmp_path)
    assert (
        cf.kind == "reanalysis" and cf.member == "ensemble" and cf.levels == (0,) and cf.target == "interim"
    )
    assert cf.times[0] == datetime(2020, 3, 1) and len(cf.times) == 48
    ds = open_normalised(cf)
    np.testing.assert_array_equal(ds.pm10.values, F.expected("pm10", 48, (0,)))


@pytest.mark.parametrize("stream", ["interim", "validated"])
def test_reanalysis_stream_is_its_target(tmp_path, stream):
    (cf,) = _ok([F.write_reanalysis(tmp_path / "r.nc", stream=stream)], tmp_path)
    assert cf.target == stream


def test_reanalysis_that_names_no_stream_is_refused(tmp_path):
    path = F.write_reanalysis(tmp_path / "r.nc", stream="ensemble")
    _refused(path, tmp_path, "cannot tell an interim from a validated reanalysis")


def test_kg_m3_converted(tmp_path):
    data = {"o3": F.expected("o3", 4, (0,)).astype(np.float64) * 1e-9}
    (cf,) = _ok([F.write_ads(tmp_path / "kg.nc", species=("o3",), units="kg m-3", data=data)], tmp_path)
    np.testing.assert_allclose(open_normalised(cf).o3.values, F.expected("o3", 4, (0,)), rtol=1e-6)


def test_tiny_negatives_clipped_to_zero(tmp_path):
    values = F.expected("so2", 4, (0,))
    values[1, 0, 2, 3] = -4e-4
    (cf,) = _ok([F.write_ads(tmp_path / "t.nc", species=("so2",), data={"so2": values})], tmp_path)
    assert open_normalised(cf).so2.values[1, 0, 2, 3] == 0.0


def test_zip_of_models(tmp_path):
    z = tmp_path / "day.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for model in ("EMEP", "SILAM", "ENSEMBLE"):
            zf.write(F.write_ads(tmp_path / f"{model}.nc", model=model), f"{model.lower()}.nc")
        zf.writestr("README.txt", "not data")
    good = _ok([z], tmp_path)
    assert sorted(g.member for g in good) == ["emep", "ensemble", "silam"]
    assert {g.source for g in good} == {"day.zip:emep.nc", "day.zip:silam.nc", "day.zip:ensemble.nc"}
    assert all(g.path.is_relative_to(tmp_path / "work") for g in good)


def test_open_normalised_is_lazy_and_reads_one_lead_at_a_time(tmp_path):
    lat = np.round(40.05 + 0.1 * np.arange(200), 2)
    lon = np.round(0.05 + 0.1 * np.arange(250), 2)
    path = F.write_ads(tmp_path / "big.nc", steps=range(97), lat=lat, lon=lon, species=("o3",), fmt="NETCDF4")
    (cf,) = _ok([path], tmp_path)
    ds = open_normalised(cf)
    assert not ds.o3.variable._in_memory
    field_bytes = 200 * 250 * 4
    tracemalloc.start()
    for i in (0, 50, 96):
        one = ds.o3.isel(lead=i).values
        assert one.shape == (1, 200, 250) and one[0, 0, 0] == F.BASE["o3"] + 1.5 * i
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 12 * field_bytes, peak  # a few fields, not 97


# --- bad files -----------------------------------------------------------------------------------


def test_truncated_netcdf4(tmp_path):
    path = F.write_ads(tmp_path / "cut4.nc", fmt="NETCDF4")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _refused(path, tmp_path, "truncated")


def test_truncated_netcdf3(tmp_path):
    path = F.write_ads(tmp_path / "cut3.nc", steps=range(24), fmt="NETCDF3_64BIT_OFFSET")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2000])
    _refused(path, tmp_path, "truncated")


def test_not_netcdf_or_grib(tmp_path):
    path = tmp_path / "bad.nc"
    path.write_text("hello, I am a CSV\n1,2,3\n")
    assert _refused(path, tmp_path) == "bad.nc: not a NetCDF or GRIB file"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.nc"
    path.write_bytes(b"")
    _refused(path, tmp_path, "empty")


def test_grid_not_cell_centres(tmp_path):
    lat = np.round(45.07 + 0.1 * np.arange(5), 2)
    _refused(F.write_ads(tmp_path / "off.nc", lat=lat), tmp_path, "wrong grid", "not a MACCGE01 cell centre")


def test_grid_not_0p1_degree(tmp_path):
    lon = np.round(8.95 + 0.2 * np.arange(8), 2)
    _refused(F.write_ads(tmp_path / "coarse.nc", lon=lon), tmp_path, "wrong grid", "0.2", "0.1°")


def test_grid_outside_maccge01(tmp_path):
    lat = np.round(71.65 + 0.1 * np.arange(5), 2)  # runs past 71.95N
    _refused(F.write_ads(tmp_path / "north.nc", lat=lat), tmp_path, "wrong grid", "outside the MACCGE01")


def test_unknown_species(tmp_path):
    path = F.write_ads(tmp_path / "co.nc", species=("o3",), variables={"o3": "co_conc"})
    _refused(path, tmp_path, "unknown species", "co_conc")


def test_unknown_member(tmp_path):
    _refused(F.write_ads(tmp_path / "foo.nc", model="WRF-CHEM"), tmp_path, "unknown member", "WRF-CHEM")


def test_missing_member(tmp_path):
    _refused(F.write_ads(tmp_path / "anon.nc", model=None), tmp_path, "unknown member", "no model named")


@pytest.mark.parametrize("units", ["ppb", "K"])
def test_wrong_units(tmp_path, units):
    _refused(F.write_ads(tmp_path / f"u_{units}.nc", units=units), tmp_path, "wrong units", repr(units))


def test_duplicated_times(tmp_path):
    _refused(F.write_ads(tmp_path / "dup.nc", steps=[0, 1, 1, 2]), tmp_path, "duplicated lead times", "1 h")


def test_lead_beyond_96h(tmp_path):
    _refused(F.write_ads(tmp_path / "l97.nc", steps=[0, 48, 97]), tmp_path, "lead time 97 h", "outside 0..96")


def test_negative_lead(tmp_path):
    _refused(F.write_ads(tmp_path / "neg.nc", steps=[-1, 0, 1]), tmp_path, "lead time -1 h", "outside")


def test_lead_outside_forecast_attribute(tmp_path):
    path = F.write_ads(tmp_path / "p24.nc", period="20200101+[0H_24H]", steps=[0, 12, 30])
    _refused(path, tmp_path, "lead time 30 h", "FORECAST = 'Europe, 20200101+[0H_24H]'")


def test_analysis_time_outside_period(tmp_path):
    path = F.write_ads(tmp_path / "an.nc", kind="analysis", steps=[0, 1, 25])
    _refused(path, tmp_path, "2020-01-02T01:00", "outside the period ANALYSIS")


def test_reanalysis_time_outside_month(tmp_path):
    path = F.write_reanalysis(tmp_path / "r.nc", month="2020-03", hours=[0, 1, 744])  # 744 h = 1 April
    _refused(path, tmp_path, "2020-04-01T00:00", "outside the month 2020-03")


def test_forecast_with_several_run_dates(tmp_path):
    path = F.write_ads(tmp_path / "two.nc", period="20200101-20200102+[0H_23H]")
    _refused(path, tmp_path, "several run dates")


def test_all_nan_field(tmp_path):
    values = F.expected("o3", 4, (0,))
    values[2] = np.nan
    path = F.write_ads(tmp_path / "nan.nc", species=("o3",), data={"o3": values})
    _refused(path, tmp_path, "o3_conc field at lead 2 h", "all NaN")


def test_negative_concentrations(tmp_path):
    values = F.expected("no2", 4, (0,))
    values[3, 0, 1, 1] = -5.0
    path = F.write_ads(tmp_path / "neg_c.nc", species=("no2",), data={"no2": values})
    _refused(path, tmp_path, "negative no2_conc concentration -5", "lead 3 h")


def test_kind_not_detectable(tmp_path):
    path = F.write_ads(tmp_path / "what.nc", kind_attrs=False, time_long_name=False)
    # the title still says FORECAST: drop it too
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        nc.delncattr("title")
        nc.delncattr("history")
    _refused(path, tmp_path, "cannot tell forecast, analysis or reanalysis")


def test_kind_from_content_not_name(tmp_path):
    """A file named like a forecast but holding an analysis is an analysis."""
    (cf,) = _ok([F.write_ads(tmp_path / "ENS_FORECAST.nc", kind="analysis")], tmp_path)
    assert cf.kind == "analysis"


def test_unknown_level(tmp_path):
    _refused(F.write_ads(tmp_path / "lev.nc", levels=(0.0, 37.0)), tmp_path, "level 37 m is not a CAMS level")


def test_empty_zip(tmp_path):
    z = tmp_path / "empty.zip"
    zipfile.ZipFile(z, "w").close()
    _refused(z, tmp_path, "empty zip")


def test_zip_without_data_files(tmp_path):
    z = tmp_path / "docs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("README.txt", "no data here")
    _refused(z, tmp_path, "no NetCDF or GRIB file", "README.txt")


def test_corrupt_zip(tmp_path):
    z = tmp_path / "broken.zip"
    z.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    _refused(z, tmp_path, "not a valid zip")


def test_bad_member_in_zip_named_by_zip_and_member(tmp_path):
    z = tmp_path / "day.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(F.write_ads(tmp_path / "ok.nc"), "chimere.nc")
        zf.write(F.write_ads(tmp_path / "ppb.nc", units="ppb"), "emep.nc")
    good, bad = inspect_files([z], tmp_path / "work")
    assert [g.source for g in good] == ["day.zip:chimere.nc"]
    assert [str(e).split(": ")[0] for e in bad] == ["day.zip:emep.nc"] and "wrong units" in str(bad[0])


def test_missing_path(tmp_path):
    good, bad = inspect_files([tmp_path / "nope.nc"], tmp_path / "work")
    assert good == [] and str(bad[0]) == "nope.nc: no such file"
