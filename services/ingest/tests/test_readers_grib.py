"""CAMS regional GRIB2 via cfgrib/ecCodes (the eccodeslib wheel), on synthetic Météo-France-style files."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import cams_files as F

from dlens.ingest.readers import inspect_files, open_normalised


def test_grib_forecast_round_trip_kg_m3_to_ug_m3(tmp_path):
    path = F.write_grib(tmp_path / "ads.grib", species=("o3", "no2"), steps=(2, 0, 1))
    good, bad = inspect_files([path], tmp_path / "work")
    assert not bad, [str(e) for e in bad]
    (cf,) = good
    assert cf.kind == "forecast" and cf.member == "chimere" and cf.run == datetime(2020, 1, 1)
    assert cf.leads == (0, 1, 2) and cf.species == ("o3", "no2") and cf.levels == (0,) and cf.on_grid
    ds = open_normalised(cf)
    assert ds.o3.dims == ("lead", "level", "latitude", "longitude")
    written = F.expected("o3", 3, (0,))  # message i holds step (2, 0, 1)[i]
    np.testing.assert_allclose(ds.o3.sel(lead=2).values, written[0], rtol=1e-5)
    np.testing.assert_allclose(ds.o3.sel(lead=0).values, written[1], rtol=1e-5)


def test_grib_member_from_pmacc_directory_as_last_resort(tmp_path):
    path = F.write_grib(tmp_path / "PMACCMINNI" / "2020_01_01_0_0_O3.grib", centre=7, sub_centre=0,
                        species=("pm10",), lon=F.LON_WRAP)  # fmt: skip
    good, bad = inspect_files([path], tmp_path / "work")
    assert not bad, [str(e) for e in bad]
    assert good[0].member == "minni" and good[0].species == ("pm10",)
    np.testing.assert_allclose(good[0].longitude, F.LON_WRAP)
    want = F.expected("pm10", 3, (0,), F.LAT, F.LON_WRAP)
    np.testing.assert_allclose(open_normalised(good[0]).pm10.values, want, rtol=1e-5)


def test_grib_analysis(tmp_path):
    path = F.write_grib(tmp_path / "an.grib", processed=0, steps=(0,), sub_centre=2)
    good, bad = inspect_files([path], tmp_path / "work")
    assert not bad, [str(e) for e in bad]
    assert (
        good[0].kind == "analysis"
        and good[0].member == "ensemble"
        and good[0].times == (datetime(2020, 1, 1),)
    )


def test_grib_unknown_model(tmp_path):
    path = F.write_grib(tmp_path / "x" / "f.grib", centre=7, sub_centre=0)
    good, bad = inspect_files([path], tmp_path / "work")
    assert good == [] and str(bad[0]).startswith("f.grib: unknown member/model: centre 7")


def test_grib_wrong_units(tmp_path):
    path = F.write_grib(tmp_path / "mmr.grib", parameter_number=2)
    good, bad = inspect_files([path], tmp_path / "work")
    assert good == [] and str(bad[0]).startswith("mmr.grib: wrong units for o3")


def test_grib_duplicated_fields(tmp_path):
    path = F.write_grib(tmp_path / "dup.grib", steps=(0, 1, 1))
    good, bad = inspect_files([path], tmp_path / "work")
    assert good == [] and "dup.grib: duplicated times" in str(bad[0])


def test_grib_truncated(tmp_path):
    path = F.write_grib(tmp_path / "cut.grib")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    good, bad = inspect_files([path], tmp_path / "work")
    assert good == [] and str(bad[0]).startswith("cut.grib: ") and "\n" not in str(bad[0])
