"""Weighted ENSEMBLE weights from trailing member skill (the method is documented in docs/evaluate.md).

For run r, species s and lead block b, member m gets w_m ∝ 1 / MSE_m, where MSE_m is member m's
mean squared error against the analysis over the leads of block b of the `window` runs that end
⌊last lead of b / 24⌋ + 1 days before r: those runs are verified by analyses valid before run r
itself, so the weights use only what an operational centre knows at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlens.common.species import LEAD_BLOCKS


def block_lag_days(block: str) -> int:
    """Days between a run and the newest run whose block-`block` leads are verified before it."""
    return LEAD_BLOCKS[block][1] // 24 + 1


def trailing_window(run: np.datetime64, block: str, days: int) -> tuple[np.datetime64, np.datetime64]:
    """First and last day (inclusive) of the `days` runs whose block-`block` leads are all verified by
    analyses valid before `run`."""
    last = np.datetime64(run, "D") - np.timedelta64(block_lag_days(block), "D")
    return last - np.timedelta64(days - 1, "D"), last


@dataclass
class MemberSkill:
    """Squared-error sums of each member per run and lead block, for one species.

    runs: (R,) datetime64[D]; sse, n: (R, block, member).
    """

    runs: np.ndarray
    sse: np.ndarray
    n: np.ndarray

    def window(self, run: np.datetime64, block: str, days: int) -> tuple[np.ndarray, np.ndarray]:
        """(sse, n) per member summed over the trailing window of `run` for `block`."""
        first, last = trailing_window(run, block, days)
        rows = (self.runs >= first) & (self.runs <= last)
        b = list(LEAD_BLOCKS).index(block)
        return self.sse[rows, b].sum(axis=0), self.n[rows, b].sum(axis=0)


def inverse_mse_weights(sse: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights, trailing RMSE) per member from summed squared errors; the weights sum to 1.

    A member with no verified history takes the median inverse MSE of the others (a neutral
    weight); with no history at all the weights are equal (the Weighted ENSEMBLE is then the mean).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = np.where(n > 0, np.maximum(sse / np.maximum(n, 1), 1e-12), np.nan)
        inverse = 1.0 / mse
    known = np.isfinite(inverse) & (inverse > 0)
    if not known.any():
        return np.full(len(sse), 1.0 / len(sse)), np.sqrt(mse)
    inverse = np.where(known, inverse, np.median(inverse[known]))
    return inverse / inverse.sum(), np.sqrt(mse)
