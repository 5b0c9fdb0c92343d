"""The O3 MDA8 of a forecast, fed lead by lead, against pandas' rolling means over the same hours."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlens.evaluate.daily import RunningMda8

LEADS = range(97)


def _series(rng: np.random.Generator) -> np.ndarray:
    """(lead, 2, 3) hourly fields: a diurnal cycle with noise and a few missing hours."""
    hours = np.arange(len(LEADS))[:, None, None]
    values = 80 + 40 * np.sin(2 * np.pi * (hours - 9) / 24) + rng.normal(0, 10, (len(LEADS), 2, 3))
    values[rng.random(values.shape) < 0.05] = np.nan
    return values


def _brute_mda8(values: np.ndarray) -> np.ndarray:
    """(4, 2, 3) by the directive's rules, window by window with pandas."""
    out = np.full((4, *values.shape[1:]), np.nan)
    for index in np.ndindex(values.shape[1:]):
        series = pd.Series(values[(slice(None), *index)])
        means = series.rolling(8, min_periods=6).mean()  # the window ending at each lead
        for day in range(4):
            first = max(7, 24 * day)
            day_means = means.iloc[first : 24 * day + 24]
            if day_means.notna().sum() >= np.ceil(0.75 * (17 if day == 0 else 24)):
                out[(day, *index)] = day_means.max()
    return out


def test_mda8_matches_rolling_means():
    values = _series(np.random.default_rng(5))
    mda8 = RunningMda8(days=4)
    for lead in LEADS:
        mda8.add(lead, values[lead])
    np.testing.assert_allclose(mda8.result(), _brute_mda8(values), rtol=1e-12)
    assert np.isfinite(mda8.result()).mean() > 0.8


def test_a_day_with_too_few_hours_has_no_mda8():
    values = _series(np.random.default_rng(6))
    values[30:40, 0, 0] = np.nan  # ten hours missing on day 1 at one cell: 7 windows lost there
    mda8 = RunningMda8(days=4)
    for lead in LEADS:
        mda8.add(lead, values[lead])
    result = mda8.result()
    assert np.isnan(result[1, 0, 0]) and np.isfinite(result[1, 1, 1])


def test_leads_that_are_not_hourly_give_nothing():
    mda8 = RunningMda8(days=4)
    for lead in range(0, 97, 3):
        mda8.add(lead, np.ones((2, 2)))
    assert mda8.result() is None
