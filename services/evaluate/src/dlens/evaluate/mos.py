"""The `mos` baseline: per gridpoint, lead block and hour of day, a linear correction of the median in
log space, fitted on the trailing window (docs/evaluate.md).

With x = log(1 + median), y = log(1 + analysis) over the window's samples of one cell, block and hour:
    log(1 + mos) = x + a0 + a1 (x − x̄),
    a0 = Σ(y − x) / (n + k),  a1 = Σ(x − x̄)(d − d̄) / (Σ(x − x̄)² + k s²),  d = y − x,
where s² is the within-cell variance of x pooled over the domain and k = PRIOR_SAMPLES: k samples of
"no correction" pull a0 to 0 and the slope to 1 where data are few. Stored as intercept a0 − a1 x̄ and
slope 1 + a1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlens.common.species import lead_block
from dlens.evaluate import ensembles
from dlens.evaluate.history import RunHistory, in_window, to_log

#: Pseudo-samples of "no correction" that shrink each gridpoint's fit.
PRIOR_SAMPLES = 4


@dataclass
class MosCoefficients:
    """Per lead and cell: log(1 + mos) = intercept + slope · log(1 + median); samples behind each fit."""

    intercept: np.ndarray  # (lead, cell)
    slope: np.ndarray
    samples: np.ndarray

    def forecast(self, members: np.ndarray, lead_index: int, block_index: int) -> np.ndarray:
        """The MOS field (level, lat, lon) from the members of one lead (NaN where none is present)."""
        median = ensembles.median(members)
        log = self.intercept[lead_index] + self.slope[lead_index] * to_log(median).ravel()
        return np.maximum(np.expm1(log), 0.0).reshape(median.shape).astype(np.float32)

    def store_arrays(self) -> dict[str, np.ndarray]:
        """The array kept in the product's group: (lead, coefficient, cell) with intercept, slope and
        samples (the store's `coefficient` labels)."""
        return {"coefficients": np.stack([self.intercept, self.slope, self.samples], axis=1)}


def fit_log_linear(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(intercept, slope, samples) per cell from samples x, y (sample, cell) with NaN where missing."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=0)
    safe_n = np.maximum(n, 1)
    x0 = np.where(ok, x, 0.0).astype(np.float64)
    d0 = np.where(ok, y - x, 0.0).astype(np.float64)
    x_mean, d_mean = x0.sum(axis=0) / safe_n, d0.sum(axis=0) / safe_n
    xc = np.where(ok, x0 - x_mean, 0.0)
    sxx = (xc * xc).sum(axis=0)
    sxd = (xc * np.where(ok, d0 - d_mean, 0.0)).sum(axis=0)
    pooled = sxx.sum() / max(int(n.sum()), 1)
    denominator = sxx + PRIOR_SAMPLES * pooled
    a1 = np.divide(sxd, denominator, out=np.zeros_like(sxd), where=denominator > 0)
    a0 = d0.sum(axis=0) / (n + PRIOR_SAMPLES)
    return (a0 - a1 * x_mean).astype(np.float32), (1.0 + a1).astype(np.float32), n.astype(np.float32)


def fit_mos(
    histories: list[RunHistory],
    run: np.datetime64,
    species: str,
    leads: tuple[int, ...],
    cells: int,
    days: int,
) -> MosCoefficients:
    """MOS coefficients of `run` for every lead, from the past runs verified before it."""
    out = MosCoefficients(*(np.zeros((len(leads), cells), dtype=np.float32) for _ in range(3)))
    for li, lead in enumerate(leads):
        block = lead_block(lead)
        same = [
            lj for lj, other in enumerate(leads) if lead_block(other) == block and other % 24 == lead % 24
        ]
        past = [h for h in in_window(histories, run, block, days) if species in h.median_log]
        if not past:
            out.slope[li] = 1.0
            continue
        x = np.concatenate([h.median_log[species][same] for h in past])
        y = np.concatenate([h.analysis_log[species][same] for h in past])
        out.intercept[li], out.slope[li], out.samples[li] = fit_log_linear(x, y)
    return out
