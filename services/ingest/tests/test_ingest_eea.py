"""Real EEA station files into `observations` through `dlens-ingest files`: the station network (the EEA
sampling-point metadata), hourly e-reporting series at LU0101A (Luxembourg), and clear one-line errors for
what does not belong there."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlens.common.reader import StoreReader
from dlens.common.schema import validate_store
from dlens.ingest.cli import main
from dlens.testing.mock_store import build_mock_store
from dlens.testing.plugin import tree_digest

#: A 1.0° x 1.2° box around Luxembourg City; runs from 2020-01-10 (leads to 48 h).
DOMAIN = "49.05,50.05,5.55,6.75"
SERIES = {"so2": "SPO-LU0101A_00001_100.parquet", "pm10": "SPO-LU0101A_00005_101.parquet"}


@pytest.fixture
def files(real_cams: Path) -> dict[str, Path]:
    pyaro = real_cams / "magnusuMET__pyaro-readers"
    return {
        "network": real_cams
        / "Open-Earth-Monitor__UseCase_AIRCON"
        / "EEA_stations_meta_SamplingPoint.parquet",
        "so2": pyaro / SERIES["so2"],
        "pm10": pyaro / SERIES["pm10"],
        "daily": pyaro / "SPO_NO0002R_1_1569.parquet",
    }


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = str(tmp_path / "lux.zarr")
    build_mock_store(url, datetime(2020, 1, 10), 3, domain=DOMAIN, leads=(0, 24, 48))
    return url


def expected_hours(path: Path, first: str, last: str) -> pd.Series:
    """The valid values of a series by UTC hour (end of the hour, from the EEA's UTC+1), within the period."""
    raw = pd.read_parquet(path)
    raw = raw[(raw["End"] - raw["Start"]) == pd.Timedelta(hours=1)]
    valid = raw[raw["Validity"] >= 1]
    hours = (valid["End"] - pd.Timedelta(hours=1)).dt.floor("h")
    values = pd.Series(pd.to_numeric(valid["Value"]).to_numpy(), index=hours.to_numpy())
    return values[(values.index >= pd.Timestamp(first)) & (values.index <= pd.Timestamp(last))]


def test_network_and_hourly_series_land_in_observations(store, files, capsys):
    assert main(["files", "--store", store, *map(str, files.values())]) == 1  # the daily series is refused
    captured = capsys.readouterr()
    assert "observations: 2 station series" in captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: SPO_NO0002R_1_1569.parquet: AggType 'day': only hourly series (AggType hour) go into observations"
    ]
    assert validate_store(store, deep=True) == []

    reader = StoreReader(store)
    group = reader.root["observations"]
    codes = [str(c) for c in group["station_code"][:].tolist()]
    lux = codes.index("LU0101A")
    assert str(group["station_type"][lux]) == "background" and str(group["station_area"][lux]) == "urban"
    assert group["station_latitude"][lux] == pytest.approx(49.5977) and not group["withheld"][lux]
    lat, lon = group["station_latitude"][:], group["station_longitude"][:]
    assert (lat >= 49.0).all() and (lat <= 50.1).all() and (lon >= 5.5).all() and (lon <= 6.8).all()

    for species, name in SERIES.items():
        expected = expected_hours(files[species], "2020-01-10T00", "2020-01-14T00")  # last run + 48 h
        assert len(expected) > 80
        for hour, value in expected.items():
            stored = reader.observations(species, np.datetime64(hour, "h"))
            assert stored[lux] == pytest.approx(value, rel=1e-6), (name, hour)
            assert np.isnan(np.delete(stored, lux)).all()  # no other station of these files
        committed = [t for t in reader.axis("observations") if reader.observations(species, t) is not None]
        assert sorted(committed) == sorted(np.datetime64(h, "h") for h in expected.index)
    assert reader.observations("o3", np.datetime64("2020-01-11T12", "h")) is None  # no O3 series given


def test_the_same_files_again_change_nothing(store, files, capsys):
    given = [str(files[k]) for k in ("network", "so2", "pm10")]
    assert main(["files", "--store", store, *given]) == 0
    before = tree_digest(Path(store) / "observations")
    assert main(["files", "--store", store, *given]) == 0
    assert tree_digest(Path(store) / "observations") == before


def test_bad_station_files_are_one_line_each_and_leave_the_store_unchanged(store, files, tmp_path, capsys):
    assert main(["files", "--store", store, str(files["so2"])]) == 1
    assert (
        "no station network in the store: give the EEA station metadata Parquet too"
        in capsys.readouterr().err
    )
    assert main(["files", "--store", store, str(files["network"])]) == 0
    before = tree_digest(Path(store))

    raw = pd.read_parquet(files["pm10"])
    raw.assign(Unit="mg.m-3").to_parquet(tmp_path / "unit.parquet")
    raw.assign(Pollutant=6001).to_parquet(tmp_path / "pm25.parquet")
    elsewhere = pd.read_parquet(files["daily"]).assign(
        AggType="hour", End=lambda t: t["Start"] + pd.Timedelta("1h")
    )
    elsewhere.to_parquet(tmp_path / "norway.parquet")
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(files["so2"].read_bytes()[:5000])
    shutil.copy(files["daily"], tmp_path / "daily.parquet")
    bad = ["unit", "pm25", "norway", "truncated", "daily"]
    assert main(["files", "--store", store, *(str(tmp_path / f"{name}.parquet") for name in bad)]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == len(bad) and "Traceback" not in err
    assert "unit.parquet: unit 'mg.m-3': expected µg/m³" in err
    assert "pm25.parquet: pollutant code 6001 is not one of O3 (7), NO2 (8), SO2 (1), PM10 (5)" in err
    assert "norway.parquet: station NO0002R is not in the store's network (outside its domain?)" in err
    assert "truncated.parquet: not a readable Parquet file" in err and "daily.parquet: AggType 'day'" in err
    assert tree_digest(Path(store)) == before
