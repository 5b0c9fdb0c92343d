"""Smooth random fields: white noise on a coarse global lattice, interpolated onto a target grid.

The lattice covers the whole MACCGE01 grid and more, so a field drawn for a crop equals the crop
of the same field drawn on the full grid. Interpolation is a separable Gaussian kernel applied as
two small matrix products (``Wy @ nodes @ Wx.T``), normalised so the result has unit variance.
"""

from __future__ import annotations

import numpy as np

LAT_RANGE = (20.0, 82.0)
LON_RANGE = (-36.0, 56.0)


def _weights(target: np.ndarray, nodes: np.ndarray, width: float) -> tuple[np.ndarray, slice]:
    """Row-normalised (unit output variance) kernel weights and the node slice they use."""
    w = np.exp(-0.5 * ((target[:, None] - nodes[None, :]) / width) ** 2)
    w[w < 1e-4] = 0.0
    used = np.flatnonzero(w.any(axis=0))
    sl = slice(int(used[0]), int(used[-1]) + 1)
    w = w[:, sl]
    w /= np.sqrt((w**2).sum(axis=1, keepdims=True))
    return w.astype(np.float32), sl


class SmoothField:
    """Unit-variance smooth random fields with a length scale of about `spacing` degrees."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray, spacing: float):
        self.spacing = float(spacing)
        node_lat = np.arange(LAT_RANGE[0], LAT_RANGE[1] + 1e-9, spacing)
        node_lon = np.arange(LON_RANGE[0], LON_RANGE[1] + 1e-9, spacing)
        self.node_shape = (node_lat.size, node_lon.size)
        self.wy, self.sy = _weights(np.asarray(lat, float), node_lat, 0.8 * spacing)
        self.wx, self.sx = _weights(np.asarray(lon, float), node_lon, 0.8 * spacing)
        self.wxt = np.ascontiguousarray(self.wx.T)

    def draw(self, gen: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Standard normal values on the whole lattice (so crops of a field stay consistent)."""
        shape = self.node_shape if n is None else (n, *self.node_shape)
        return gen.standard_normal(shape, dtype=np.float32)

    def sample(self, nodes: np.ndarray) -> np.ndarray:
        """Interpolate whole-lattice values onto the grid: (lat, lon) float32, unit variance."""
        return (self.wy @ nodes[self.sy, self.sx]) @ self.wxt


def blend(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """Linear interpolation of two independent unit-variance fields, keeping unit variance."""
    if w <= 0.0:
        return a
    if w >= 1.0:
        return b
    return ((1.0 - w) * a + w * b) / np.float32(np.hypot(1.0 - w, w))


def blend_stack(stack: np.ndarray, position: float) -> np.ndarray:
    """Variance-keeping interpolation in a stack of independent fields at a fractional index."""
    k = min(int(position), stack.shape[0] - 1)
    w = position - k
    return stack[k] if w <= 0.0 or k + 1 >= stack.shape[0] else blend(stack[k], stack[k + 1], w)
