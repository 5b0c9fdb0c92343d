"""The `emos` baseline: per region and lead block, a ridge-regularised linear combination of the
de-biased members in log space, fitted on the trailing window (docs/evaluate.md).

With u_m = log(1 + member m), y = log(1 + analysis), over the window's complete samples:
- de-biasing per gridpoint: d_m = Σ(y − u_m) / (n + k), z_m = u_m + d_m (k = PRIOR_SAMPLES);
- weights per region (regions.partition_for): w = argmin Σ(y − Σ w_m z_m)² + λ‖w − 1/M‖² with Σ w_m = 1,
  λ = RIDGE_SAMPLES × the mean variance of the members' departures from their mean;
- forecast: log(1 + emos) = Σ_present w_m z_m / Σ_present w_m (the present members renormalised); where the
  present members' weights sum to less than MIN_PRESENT_WEIGHT, their plain mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import add

import numpy as np

from dlens.common.species import LEAD_BLOCKS, MEMBERS
from dlens.evaluate.history import EmosSums, RunHistory, in_window, to_log

PRIOR_SAMPLES = 4
RIDGE_SAMPLES = 100
MIN_PRESENT_WEIGHT = 0.2


@dataclass
class EmosCoefficients:
    """Per lead block: the de-biasing shift of each member and cell, and the weights of each region."""

    bias: np.ndarray  # (block, member, cell)
    region_weights: np.ndarray  # (block, region, member)
    region: np.ndarray  # (cell,) index into the regions

    def cell_weights(self, block_index: int) -> np.ndarray:
        """(member, cell): the weights of each cell's region."""
        return self.region_weights[block_index][self.region].T

    def store_arrays(self) -> dict[str, np.ndarray]:
        """The arrays kept in the product's group, (lead_block, member, cell) each."""
        weights = np.stack([self.cell_weights(b) for b in range(len(self.bias))])
        return {"member_bias": self.bias, "member_weights": weights.astype(np.float32)}

    def forecast(self, members: np.ndarray, lead_index: int, block_index: int) -> np.ndarray:
        """The EMOS field (level, lat, lon) from the members of one lead (NaN where none is present)."""
        shape = members.shape[1:]
        z = to_log(members).reshape(len(members), -1) + self.bias[block_index]
        present = np.isfinite(z)
        w = np.where(present, self.cell_weights(block_index), 0.0)
        total = w.sum(axis=0)
        count = present.sum(axis=0)
        share = np.where(
            total >= MIN_PRESENT_WEIGHT, w / np.where(total > 0, total, 1.0), present / np.maximum(count, 1)
        )
        log = (share * np.where(present, z, 0.0)).sum(axis=0)
        out = np.where(count > 0, np.maximum(np.expm1(log), 0.0), np.nan)
        return out.reshape(shape).astype(np.float32)


def constrained_ridge(gram: np.ndarray, cross: np.ndarray, count: float) -> np.ndarray:
    """Weights summing to 1 minimising Σ(y − w·z)² + λ‖w − 1/M‖², from Σzz' and Σzy over `count` samples."""
    m = len(cross)
    equal = np.full(m, 1.0 / m)
    centring = np.eye(m) - 1.0 / m
    ridge = RIDGE_SAMPLES * np.trace(centring @ gram @ centring) / (m * count)
    system = gram + max(ridge, 1e-12) * np.eye(m)
    solved = np.linalg.solve(system, cross - gram @ equal)
    ones = np.linalg.solve(system, np.ones(m))
    return equal + solved - ones * solved.sum() / ones.sum()


def fit_block(sums: EmosSums, region: np.ndarray, regions: int) -> tuple[np.ndarray, np.ndarray]:
    """(bias (member, cell), weights (region, member)) from one block's window sums."""
    m = len(MEMBERS)
    n = sums.cell_count
    bias = (sums.target_sum[None] - sums.member_sum) / (n + PRIOR_SAMPLES)
    weights = np.full((regions, m), 1.0 / m)
    for r in range(regions):
        cells = region == r
        if sums.count[r] <= m:
            continue
        d, u = bias[:, cells], sums.member_sum[:, cells]
        shift = d @ u.T
        gram = sums.gram[r] + shift + shift.T + (d * n[cells]) @ d.T
        cross = sums.cross[r] + d @ sums.target_sum[cells]
        weights[r] = constrained_ridge(gram, cross, sums.count[r])
    return bias, weights


def fit_emos(
    histories: list[RunHistory], run: np.datetime64, species: str, region: np.ndarray, regions: int, days: int
) -> EmosCoefficients:
    """EMOS coefficients of `run` for every lead block, from the past runs verified before it."""
    biases, weights = [], []
    for b, block in enumerate(LEAD_BLOCKS):
        past = [h.emos[species][b] for h in in_window(histories, run, block, days) if species in h.emos]
        sums = reduce(add, past, EmosSums.zeros(regions, region.size))
        bias, w = fit_block(sums, region, regions)
        biases.append(bias)
        weights.append(w)
    return EmosCoefficients(np.array(biases, dtype=np.float32), np.array(weights), region)
