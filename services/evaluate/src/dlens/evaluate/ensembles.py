"""Combining member fields into ensemble fields (DESIGN §6); members on axis 0, NaN where absent."""

from __future__ import annotations

import warnings

import numpy as np


def _quiet(function, *args, **kwargs) -> np.ndarray:
    """Call a nan-aware reduction, silencing its warning for points with no member at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(*args, **kwargs)


def median(members: np.ndarray) -> np.ndarray:
    """CAMS Median ENSEMBLE: per point, the median of the members present.

    With an even number present it is the mean of the two middle values; NaN where none is present.
    """
    return _quiet(np.nanmedian, members, axis=0).astype(np.float32)


def mean(members: np.ndarray) -> np.ndarray:
    """Per point, the mean of the members present (NaN where none is)."""
    return _quiet(np.nanmean, members, axis=0).astype(np.float32)


def weighted(members: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per point, sum of w_m x_m over the members present, the weights renormalised over them; weights
    (member,) for every point alike, or of the members' shape for weights per point."""
    w = np.asarray(weights, dtype=np.float64)
    w = w if w.shape == members.shape else w.reshape(-1, *([1] * (members.ndim - 1)))
    present = np.isfinite(members)
    total = np.where(present, w, 0.0).sum(axis=0)
    value = np.where(present, w * members, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, value / total, np.nan).astype(np.float32)


def best_member(members: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per point, the value of the present member with the largest weight (the best trailing skill)."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1, *([1] * (members.ndim - 1)))
    present = np.isfinite(members)
    rank = np.where(present, w, -np.inf)
    best = np.argmax(rank, axis=0)
    value = np.take_along_axis(members, best[None], axis=0)[0]
    return np.where(present.any(axis=0), value, np.nan).astype(np.float32)
