"""The statistics the synthetic world is calibrated on (bench/synthetic.py), computed the same way for a
real series and a synthetic one.

All take an hourly series (µg/m³, a `pandas.Series` indexed by UTC time) of at least a year, or the
member forecasts and analysis of a set of runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Days of the centred running mean that removes the seasonal cycle from daily means.
SEASONAL_WINDOW_DAYS = 31


def deseasonalised_log_daily(series: pd.Series) -> pd.Series:
    """Log daily means minus their 31-day centred running mean: the day-to-day weather signal."""
    daily = np.log(series.resample("D").mean().clip(lower=0.1))
    return (
        daily - daily.rolling(SEASONAL_WINDOW_DAYS, center=True, min_periods=SEASONAL_WINDOW_DAYS // 3).mean()
    )


def series_statistics(series: pd.Series) -> dict[str, float]:
    """Mean, p99 and p99.9 of the hourly values; std and lag-1 autocorrelation of the deseasonalised log
    daily means; UTC hours of the diurnal maximum and minimum; winter (DJF) / summer (JJA) mean; days
    with a daily mean above 50 per year."""
    values = series.to_numpy(float)
    anomaly = deseasonalised_log_daily(series)
    diurnal = series.groupby(series.index.hour).mean()
    months = series.index.month
    winter, summer = series[np.isin(months, (12, 1, 2))].mean(), series[np.isin(months, (6, 7, 8))].mean()
    daily = series.resample("D").mean()
    years = len(daily) / 365.25
    return {
        "mean": float(values.mean()),
        "p99": float(np.percentile(values, 99)),
        "p99.9": float(np.percentile(values, 99.9)),
        "daily_variability": float(anomaly.std()),
        "daily_persistence": float(anomaly.autocorr(1)),
        "hour_of_max": float(diurnal.idxmax()),
        "hour_of_min": float(diurnal.idxmin()),
        "winter_to_summer": float(winter / summer),
        "days_above_50": float((daily > 50).sum() / years),
    }


def combine_years(stats: list[dict[str, float]]) -> dict[str, float]:
    """The mean of several years' statistics (the hours of the diurnal cycle as a circular mean)."""
    out = {}
    for key in stats[0]:
        values = np.array([s[key] for s in stats])
        if key.startswith("hour_of"):
            angle = np.angle(np.exp(2j * np.pi * values / 24).mean())
            out[key] = float((angle * 24 / (2 * np.pi)) % 24)
        else:
            out[key] = float(values.mean())
    return out


def circular_hours(a: float, b: float) -> float:
    """The distance between two hours of the day."""
    d = abs(a - b) % 24
    return min(d, 24 - d)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))
