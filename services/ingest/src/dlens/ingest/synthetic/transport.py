"""Advection and spreading of emissions by a (frozen) wind field: a cheap puff-age plume model.

The concentration of a tracer with lifetime ``tau`` is the sum, over puff ages ``a``, of the
emissions blurred by the spread reached at that age and displaced upwind by ``a * wind``,
weighted by ``exp(-a / tau)``. A handful of ages gives smooth, wind-aligned plumes.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

#: Puff ages (hours) and the age interval each one stands for.
AGES = np.array([0.0, 1.5, 3.5, 7.0, 12.0, 20.0, 32.0])
_SPAN = np.gradient(AGES)


def wind_in_cells(u: np.ndarray, v: np.ndarray, lat: np.ndarray, resolution: float = 0.1):
    """Wind (m/s, east and north) as cells per hour on a regular lat/lon grid."""
    cells_y = 3600.0 / (111.2e3 * resolution)
    cells_x = cells_y / np.cos(np.radians(lat))[:, None]
    return (u * cells_x).astype(np.float32), (v * cells_y).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _index_grid(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def shift(field: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``field`` sampled at ``(y - dy, x - dx)``: moved downstream by (dx, dy) cells."""
    yy, xx = _index_grid(*field.shape)
    return map_coordinates(field, [yy - dy, xx - dx], order=1, mode="nearest").astype(np.float32)


def plume(
    emission: np.ndarray, cx: np.ndarray, cy: np.ndarray, lifetime_h: float, spread: float = 0.35
) -> np.ndarray:
    """Steady plume field of an emission map under a wind of (cx, cy) cells per hour.

    Normalised so a uniform emission of 1 gives 1: values are emission times an effective age.
    """
    weights = np.exp(-AGES / lifetime_h) * _SPAN
    weights = weights / weights.sum()
    out = np.zeros(emission.shape, np.float32)
    blurred, sigma_prev = emission.astype(np.float32), 0.0
    for age, w in zip(AGES, weights):
        sigma = np.hypot(0.6, spread * age) if age > 0 else 0.0
        if sigma > sigma_prev:
            blurred = gaussian_filter(blurred, np.sqrt(sigma**2 - sigma_prev**2), mode="nearest")
            sigma_prev = sigma
        out += np.float32(w) * (blurred if age == 0 else shift(blurred, age * cx, age * cy))
    return out
