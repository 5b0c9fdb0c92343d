"""Advection and spreading of emissions by a (frozen) wind field: a cheap puff-age plume model.

The concentration of a tracer with lifetime ``tau`` is the sum, over puff ages ``a``, of the
emissions blurred by the spread reached at that age and displaced upwind by ``a * wind``,
weighted by ``exp(-a / tau)``. A handful of ages gives smooth, wind-aligned plumes.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

#: Puff ages (hours) and the age interval each one stands for.
AGES = np.array([0.0, 1.5, 3.5, 7.0, 12.0, 20.0, 32.0])
_SPAN = np.gradient(AGES)


def wind_in_cells(u: np.ndarray, v: np.ndarray, lat: np.ndarray, resolution: float = 0.1):
    """Wind (m/s, east and north) as cells per hour on a regular lat/lon grid."""
    cells_y = 3600.0 / (111.2e3 * resolution)
    cells_x = cells_y / np.cos(np.radians(lat))[:, None]
    return (u * cells_x).astype(np.float32), (v * cells_y).astype(np.float32)


class Displacer:
    """Fields moved downstream along one wind by so many hours of it, bilinearly (edges held).

    The gather indices and weights of each displacement are computed once and reused for every field
    moved by it (the plumes of the three tracers and the members' displaced plumes share a wind).
    """

    def __init__(self, cx: np.ndarray, cy: np.ndarray):
        self.cx, self.cy = cx, cy
        self.shape = cx.shape
        self._gathers: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _gather(self, hours: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if hours not in self._gathers:
            ny, nx = self.shape
            yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
            y = np.clip(yy - np.float32(hours) * self.cy, 0.0, ny - 1.0)
            x = np.clip(xx - np.float32(hours) * self.cx, 0.0, nx - 1.0)
            y0 = np.minimum(y.astype(np.int32), max(ny - 2, 0))
            x0 = np.minimum(x.astype(np.int32), max(nx - 2, 0))
            self._gathers[hours] = ((y0 * nx + x0).ravel(), (y - y0).ravel(), (x - x0).ravel())
        return self._gathers[hours]

    def __call__(self, field: np.ndarray, hours: float) -> np.ndarray:
        """`field` sampled at ``(y - hours * cy, x - hours * cx)``: moved downstream by that many hours."""
        if hours == 0:
            return field
        index, fy, fx = self._gather(float(hours))
        flat, nx = field.ravel(), self.shape[1]
        a, b = flat[index], flat[index + 1]
        c, d = flat[index + nx], flat[index + nx + 1]
        top = a + fx * (b - a)
        bottom = c + fx * (d - c)
        return (top + fy * (bottom - top)).reshape(self.shape)


def plume(emission: np.ndarray, move: Displacer, lifetime_h: float, spread: float = 0.35) -> np.ndarray:
    """Steady plume field of an emission map under the wind of `move` (cells per hour).

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
        out += np.float32(w) * move(blurred, age)
    return out
