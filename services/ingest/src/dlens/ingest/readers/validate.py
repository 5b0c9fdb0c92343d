"""Full data checks: read every value once, block by block (bounded memory)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import Problem, one_line
from .layout import Layout
from .lazy import NEG_TOL

_BLOCK_VALUES = 4_000_000  # ~16 MB of float32 per read


def check_values(layout: Layout) -> None:
    """Refuse unreadable data, fields that are entirely NaN, and negatives below -NEG_TOL µg/m3."""
    ds = layout.dataset(clip=False)
    tdim = layout.time_dim
    labels = layout.leads if layout.kind == "forecast" else layout.times
    empty_series: list[str] = []
    for sp, src in layout.species.items():
        var, name = ds[sp], src.name
        n = var.shape[0]
        per_step = int(np.prod(var.shape[1:])) or 1
        step = max(1, _BLOCK_VALUES // per_step)
        single_cell = var.shape[2] * var.shape[3] == 1
        nan_steps = 0
        for i0 in range(0, n, step):
            try:
                block = var.isel({tdim: slice(i0, i0 + step)}).values
            except Exception as exc:
                raise Problem(
                    f"cannot read {name} (truncated or corrupt file?): {one_line(exc, 100)}"
                ) from None
            empty = np.isnan(block).all(axis=(2, 3))  # (time, level) fields with no value at all
            nan_steps += int(empty.any(axis=1).sum())
            if empty.any() and not single_cell:
                t, lv = np.argwhere(empty)[0]
                raise Problem(f"{name} field at {_label(labels[i0 + t], tdim)}, level "
                              f"{layout.levels[lv]} m is all NaN")  # fmt: skip
            low = np.nanmin(block) if not np.isnan(block).all() else np.nan
            if low < -NEG_TOL:
                where = np.argwhere(block < -NEG_TOL)[0]
                raise Problem(f"negative {name} concentration {low:.4g} µg/m3 (first at "
                              f"{_label(labels[i0 + where[0]], tdim)})")  # fmt: skip
        if single_cell and nan_steps == n:
            empty_series.append(name)
        elif single_cell and nan_steps:
            raise Problem(f"{name}: {nan_steps} of {n} values are NaN (empty fields)")
    if empty_series:
        raise Problem(f"all-NaN data: every value of {', '.join(empty_series)} is NaN")


def _label(value, tdim: str) -> str:
    return f"lead {int(value)} h" if tdim == "lead" else f"{pd.Timestamp(value):%Y-%m-%dT%H:%M}"
