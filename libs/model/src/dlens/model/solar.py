"""The solar zenith angle of a valid time over a grid, a time-encoding predictor (DESIGN §7).

No solar-position library is a dependency, so this is the NOAA general solar position calculation
(Spencer's Fourier series for the declination and the equation of time, NOAA Global Monitoring Division,
"General Solar Position Calculations"): about 0.1° from an ephemeris, far below what a 0.1° grid resolves.
"""

from __future__ import annotations

import numpy as np


def solar_declination_and_time(valid_time: np.datetime64) -> tuple[float, float]:
    """(declination in radians, true solar time offset in minutes at longitude 0) of a UTC time."""
    t = np.datetime64(valid_time, "s")
    year_start = t.astype("datetime64[Y]")
    next_year = (year_start + np.timedelta64(1, "Y")).astype("datetime64[D]")
    days_in_year = int((next_year - year_start.astype("datetime64[D]")).astype(int))
    seconds = (t - year_start.astype("datetime64[s]")).astype(int)
    hour = seconds % 86400 / 3600.0
    gamma = 2 * np.pi / days_in_year * (seconds // 86400 + (hour - 12) / 24)  # fractional year
    equation_of_time = 229.18 * (
        0.000075 + 0.001868 * np.cos(gamma) - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma) - 0.040849 * np.sin(2 * gamma)
    )  # fmt: skip
    declination = (
        0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma) - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma) - 0.002697 * np.cos(3 * gamma) + 0.00148 * np.sin(3 * gamma)
    )  # fmt: skip
    return float(declination), float(hour * 60 + equation_of_time)


def cos_zenith(valid_time: np.datetime64, latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """cos of the solar zenith angle (lat, lon) at `valid_time` (UTC) on the grid of `latitude` ×
    `longitude` (degrees, cell centres): 1 with the sun overhead, ≤ 0 at night."""
    declination, solar_minutes = solar_declination_and_time(valid_time)
    lat = np.radians(np.asarray(latitude, dtype=np.float64))[:, None]
    hour_angle = np.radians((solar_minutes + 4.0 * np.asarray(longitude, dtype=np.float64)) / 4.0 - 180.0)
    cos = np.sin(lat) * np.sin(declination) + np.cos(lat) * np.cos(declination) * np.cos(hour_angle)[None, :]
    return np.clip(cos, -1.0, 1.0).astype(np.float32)
