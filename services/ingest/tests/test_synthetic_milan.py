"""Calibration of the synthetic reanalysis against the real CAMS reanalysis at Milan (2018).

DESIGN.md §5: at a comparable urban hot spot the generator's validated reanalysis shows the same diurnal
phases (within 2 h), the same seasonal direction and the same order of magnitude (bench/synthetic.py
holds the full calibration, with the distributions). The real numbers are computed here from the file,
never hard-coded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from dlens.common.grid import parse_domain
from dlens.common.species import SPECIES_NAMES
from dlens.ingest.synthetic import SyntheticGenerator
from dlens.testing.plugin import require_cams_samples

SAMPLES = require_cams_samples(module_level=True)
MILAN_2018 = SAMPLES / "Assimila__HARMONIA_AQ" / "Milan" / "cams_Eur_AQ_reanalysis_2018.nc"
MILAN_CELL = (45.45, 9.15)  # the MACCGE01 cell of the reanalysis point (45.5N 9.2E)
#: 14-day windows (first day of year, 0-based) in winter, spring, summer and autumn.
WINDOWS = {"jan": 9, "apr": 99, "jul": 190, "oct": 282}
DAYS = 14


def circular_hour_diff(a: int, b: int) -> int:
    d = abs(a - b) % 24
    return min(d, 24 - d)


@pytest.fixture(scope="module")
def real() -> dict[str, np.ndarray]:
    """Real hourly series per species, shaped (day, hour) for 2018."""
    import netCDF4

    with netCDF4.Dataset(MILAN_2018) as ds:
        assert "hours since 2018-01-01" in ds["time"].units
        assert ds["time"][0] == 0 and ds["time"].size == 8760
        return {sp: np.asarray(ds[sp][:], float).reshape(365, 24) for sp in SPECIES_NAMES}


@pytest.fixture(scope="module")
def synthetic() -> dict[str, np.ndarray]:
    """Generator reanalysis at the Milan cell (a one-cell domain: the same values as that cell of any larger
    domain) over the same windows, shaped (day, hour)."""
    dom = parse_domain(f"{MILAN_CELL[0]},{MILAN_CELL[0]},{MILAN_CELL[1]},{MILAN_CELL[1]}")
    i = j = 0
    assert (dom.latitude[i], dom.longitude[j]) == MILAN_CELL
    gen = SyntheticGenerator(dom, seed=0)
    out = {sp: np.full((365, 24), np.nan) for sp in SPECIES_NAMES}
    for first in WINDOWS.values():
        for day in range(first, first + DAYS):
            for hour in range(24):
                valid = datetime(2018, 1, 1) + timedelta(days=day, hours=hour)
                for sp in SPECIES_NAMES:
                    out[sp][day, hour] = gen.analysis(sp, valid, "validated")[i, j]
    return out


def window(series: np.ndarray, name: str) -> np.ndarray:
    first = WINDOWS[name]
    return series[first : first + DAYS]


def all_windows(series: np.ndarray) -> np.ndarray:
    return np.concatenate([window(series, w) for w in WINDOWS])


@pytest.mark.parametrize("species", ["o3", "no2"])
@pytest.mark.parametrize("name", [*WINDOWS, "all"])
def test_diurnal_phase(real, synthetic, species, name):
    pick = all_windows if name == "all" else lambda s: window(s, name)
    cycle_real = pick(real[species]).mean(axis=0)
    cycle_syn = pick(synthetic[species]).mean(axis=0)
    for fn in (np.argmax, np.argmin):
        hr, hs = int(fn(cycle_real)), int(fn(cycle_syn))
        assert circular_hour_diff(hr, hs) <= 2, (fn.__name__, hr, hs, np.round(cycle_syn, 1))


def test_ozone_diurnal_amplitude(real, synthetic):
    ratio = lambda c: c.max() / c.min()  # noqa: E731
    r = ratio(all_windows(real["o3"]).mean(axis=0))
    s = ratio(all_windows(synthetic["o3"]).mean(axis=0))
    assert 0.5 * r < s < 2.0 * r, (r, s)


@pytest.mark.parametrize("species", SPECIES_NAMES)
def test_seasonal_direction(real, synthetic, species):
    """January vs July window means go the same way (O3 summer-high, the others winter-high)."""
    r = window(real[species], "jan").mean() / window(real[species], "jul").mean()
    s = window(synthetic[species], "jan").mean() / window(synthetic[species], "jul").mean()
    assert (r > 1) == (s > 1), (r, s)
    if abs(np.log(r)) > np.log(1.5):  # a clear real contrast must be clear in the synthetic too
        assert abs(np.log(s)) > np.log(1.3), (r, s)


@pytest.mark.parametrize("species", SPECIES_NAMES)
def test_magnitude(real, synthetic, species):
    r, s = all_windows(real[species]), all_windows(synthetic[species])
    assert 0.5 < s.mean() / r.mean() < 2.0, (r.mean(), s.mean())
    assert 0.5 < np.percentile(s, 99) / np.percentile(r, 99) < 2.0
    assert (s > 0).all()
