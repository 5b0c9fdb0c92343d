"""A lazily indexed view of one raw variable in store order, units and orientation.

xarray's documented backend pattern (``BackendArray`` + ``explicit_indexing_adapter`` wrapped in
``LazilyIndexedArray``) keeps the dataset lazy without dask: each ``.isel(lead=i)`` reads only that
slab from the file (the raw variable below is itself a lazy, CF-decoded view of the file).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

#: Negative values above -NEG_TOL µg/m3 are rounding noise (clipped to 0); below, the file is refused.
NEG_TOL = 1e-3


@dataclass(frozen=True)
class Axis:
    """One target axis: the raw dimension it comes from (None: a new length-1 axis) and the raw index
    of each target position (reversal, longitude re-ordering)."""

    source_dim: str | None
    index: np.ndarray


def _as_indexer(idx: np.ndarray) -> slice | np.ndarray:
    """A slice when the indices are evenly spaced (faster reads), else the integer array."""
    if idx.size == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    step = int(idx[1] - idx[0])
    if step != 0 and np.array_equal(np.diff(idx), np.full(idx.size - 1, step)):
        if step > 0:
            return slice(int(idx[0]), int(idx[-1]) + 1, step)
        stop = int(idx[-1]) - 1
        return slice(int(idx[0]), None if stop < 0 else stop, step)
    return idx


class NormalisedArray(BackendArray):
    """Raw variable → float32 µg/m3 in target dim order; optional clipping of rounding negatives."""

    def __init__(self, raw: xr.DataArray, axes: list[Axis], factor: float, clip: bool = True) -> None:
        self.raw = raw
        self.axes = axes
        self.factor = factor
        self.clip = clip
        self.shape = tuple(int(a.index.size) for a in axes)
        self.dtype = np.dtype("float32")

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key: tuple) -> np.ndarray:
        picks, squeeze = [], []
        for pos, (axis, k) in enumerate(zip(self.axes, key, strict=True)):
            positions = np.arange(axis.index.size)[k]
            if np.ndim(positions) == 0:
                squeeze.append(pos)
            picks.append(axis.index[np.atleast_1d(positions)])
        present = [
            (a.source_dim, p) for a, p in zip(self.axes, picks, strict=True) if a.source_dim is not None
        ]
        if any(p.size == 0 for p in picks):
            return np.empty([p.size for i, p in enumerate(picks) if i not in squeeze], dtype=self.dtype)
        sub = self.raw.isel({d: _as_indexer(p) for d, p in present})
        sub = sub.transpose(*[d for d, _ in present])
        values = np.asarray(sub.values, dtype=np.float64)
        for pos, axis in enumerate(self.axes):
            if axis.source_dim is None:
                values = np.expand_dims(values, pos)
                values = np.repeat(values, picks[pos].size, axis=pos)
        if self.factor != 1.0:
            values = values * self.factor
        out = values.astype(np.float32)
        if self.clip:
            out[(out < 0) & (out >= -NEG_TOL)] = 0.0
        return out.squeeze(axis=tuple(squeeze)) if squeeze else out


def lazy_variable(dims: tuple[str, ...], array: NormalisedArray, attrs: dict) -> xr.Variable:
    """An xarray Variable backed by `array`, read only when indexed."""
    return xr.Variable(dims, indexing.LazilyIndexedArray(array), attrs)
