"""Verification at stations: bilinear interpolation against a hand computation, station sets, summed scores
against a direct computation, and the real CAMS ENSEMBLE and CAMS-MOS station forecasts of 2024-03-01."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dlens.common.grid import parse_domain
from dlens.evaluate.metrics import scores_from_sums
from dlens.evaluate.stations import (
    STATION_SETS,
    STATION_TYPES,
    StationNetwork,
    StationSampler,
    per_station_sums,
    station_sums,
)

DOMAIN = parse_domain("45.05,45.95,8.05,9.45")  # 10 x 15 cells
SETS = list(STATION_SETS)


def network(lat, lon, kind=None, withheld=None) -> StationNetwork:
    n = len(lat)
    return StationNetwork(
        code=np.array([f"IT{k:04d}A" for k in range(n)]),
        kind=np.array(kind if kind is not None else ["background"] * n),
        area=np.array(["urban"] * n),
        latitude=np.asarray(lat, dtype=float),
        longitude=np.asarray(lon, dtype=float),
        withheld=np.asarray(withheld if withheld is not None else [False] * n),
    )


def test_bilinear_value_equals_a_hand_computation():
    field = np.random.default_rng(1).uniform(0, 100, DOMAIN.shape)
    lat, lon = DOMAIN.latitude, DOMAIN.longitude
    # Three tenths of a cell north of row 2, seven tenths east of column 5; then a cell centre; then one
    # station half a cell outside (kept, clamped to the edge) and one far outside (dropped).
    stations = network([lat[2] + 0.03, lat[7], lat[0] - 0.04, 50.0], [lon[5] + 0.07, lon[11], lon[3], lon[3]])
    sampler = StationSampler.for_domain(stations, DOMAIN)
    assert sampler.index.tolist() == [0, 1, 2]
    by_hand = (
        0.7 * 0.3 * field[2, 5] + 0.7 * 0.7 * field[2, 6] + 0.3 * 0.3 * field[3, 5] + 0.3 * 0.7 * field[3, 6]
    )
    values = sampler.sample(field)
    np.testing.assert_allclose(values, [by_hand, field[7, 11], field[0, 3]], rtol=1e-6)
    # A NaN neighbour makes the station's value NaN; the other stations are untouched; leading dims kept.
    holed = np.stack([field, field])
    holed[1, 3, 6] = np.nan
    both = sampler.sample(holed)
    assert both.shape == (2, 3) and np.isnan(both[1, 0]) and np.isfinite(both[1, 1:]).all()


def test_station_sets_keep_withheld_stations_apart():
    kinds = ["background", "traffic", "industrial", "background", "traffic"]
    withheld = [False, False, False, True, True]
    stations = network(np.full(5, 45.5), np.linspace(8.2, 9.2, 5), kinds, withheld)
    masks = stations.set_masks()
    assert masks.shape == (len(STATION_SETS), 5)
    by_set = {name: np.flatnonzero(m).tolist() for name, m in zip(SETS, masks)}
    assert by_set == {
        "all": [0, 1, 2], "background": [0], "traffic": [1], "industrial": [2], "withheld": [3, 4],
        "withheld-background": [3],
    }  # fmt: skip


def test_station_sums_equal_a_direct_computation_with_nans():
    rng = np.random.default_rng(3)
    forecast, observed = rng.gamma(3, 10, (24, 40)), rng.gamma(3, 10, (24, 40))
    forecast[rng.random(forecast.shape) < 0.1] = np.nan
    observed[rng.random(observed.shape) < 0.2] = np.nan
    kinds = rng.choice(list(STATION_TYPES), 40)
    stations = network(np.full(40, 45.5), np.full(40, 8.5), kinds, rng.random(40) < 0.2)
    masks = stations.set_masks()
    scores = scores_from_sums(station_sums(forecast, observed, masks))
    for k, mask in enumerate(masks):
        f, o = forecast[:, mask], observed[:, mask]
        ok = np.isfinite(f) & np.isfinite(o)
        assert scores["n"][k] == ok.sum()
        np.testing.assert_allclose(scores["rmse"][k], np.sqrt(np.mean((f[ok] - o[ok]) ** 2)), rtol=1e-12)
        np.testing.assert_allclose(scores["bias"][k], np.mean(f[ok] - o[ok]), rtol=1e-12)
        np.testing.assert_allclose(scores["r"][k], np.corrcoef(f[ok], o[ok])[0, 1], rtol=1e-10)
    per_station = per_station_sums(forecast, observed)
    ok = np.isfinite(forecast) & np.isfinite(observed)
    np.testing.assert_allclose(
        per_station[:, 0], np.nansum(np.where(ok, (forecast - observed) ** 2, 0), axis=0)
    )
    np.testing.assert_array_equal(per_station[:, 2], ok.sum(axis=0))


# ------------------------------------------------------------------ the real CAMS station forecasts
#: RMSE of the CAMS ENSEMBLE day-0 forecast at the EEA NRT stations both files share (SOURCES.md), and the
#: CAMS-MOS RMSE as a share of it.
REAL_ENS_RMSE = {"no2": 10.5, "o3": 17.8, "pm10": 15.9}
REAL_MOS_SHARE = {"no2": 0.70, "o3": 0.75, "pm10": 0.78}


def colocated(folder: Path, species: str, model: str) -> xr.DataArray:
    """pyaerocom's colocated (data_source: observations then forecast, time, station_name) array."""
    (path,) = folder.glob(f"conc{species}_conc{species}_MOD-{model}_REF-EEA-NRT_*.nc")
    return xr.open_dataarray(path).load()


@pytest.mark.parametrize("species", list(REAL_ENS_RMSE))
def test_real_cams_ensemble_and_mos_at_eea_stations(real_cams, species):
    """The project's station scoring on the real CAMS ENSEMBLE and CAMS-MOS forecasts of 2024-03-01 at the
    stations both share, every hour where the observation and both forecasts exist, by EEA station type."""
    folder = real_cams / "metno__pyaerocom"
    ens, mos = colocated(folder, species, "ENS"), colocated(folder, species, "MOS")
    shared = np.intersect1d(ens["station_name"].values, mos["station_name"].values)
    ens, mos = ens.sel(station_name=shared), mos.sel(station_name=shared)
    observed, observed_mos = ens.isel(data_source=0).values, mos.isel(data_source=0).values
    both = np.isfinite(observed) & np.isfinite(observed_mos)
    np.testing.assert_array_equal(
        observed[both], observed_mos[both]
    )  # the same observations where both have one
    forecasts = {"ENS": ens.isel(data_source=1).values, "MOS": mos.isel(data_source=1).values}
    paired = both & np.isfinite(forecasts["ENS"]) & np.isfinite(forecasts["MOS"])
    observed = np.where(paired, observed, np.nan)

    meta = pd.read_parquet(
        real_cams / "Open-Earth-Monitor__UseCase_AIRCON" / "EEA_stations_meta_table.parquet"
    )
    kinds = meta.set_index("Air.Quality.Station.EoI.Code")["Station.Type"].reindex(shared).fillna("unknown")
    stations = network(ens["latitude"].values, ens["longitude"].values, kinds.to_numpy())
    masks = stations.set_masks()
    rmse = {}
    for model, forecast in forecasts.items():
        scores = scores_from_sums(station_sums(forecast, observed, masks))
        for k, mask in enumerate(masks):
            f, o = forecast[:, mask], observed[:, mask]
            ok = np.isfinite(f) & np.isfinite(o)
            if ok.any():
                np.testing.assert_allclose(
                    scores["rmse"][k], np.sqrt(np.mean((f[ok] - o[ok]) ** 2)), rtol=1e-12
                )
                assert scores["n"][k] == ok.sum()
        rmse[model] = float(scores["rmse"][SETS.index("all")])
    assert rmse["ENS"] == pytest.approx(REAL_ENS_RMSE[species], abs=0.05)
    assert rmse["MOS"] / rmse["ENS"] == pytest.approx(REAL_MOS_SHARE[species], abs=0.005)
