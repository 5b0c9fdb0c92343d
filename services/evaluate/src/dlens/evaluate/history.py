"""What the learned baselines (`mos`, `emos`) take from one past run, in log space (docs/evaluate.md).

One Ray task reads one run and returns, per species: the log median and log analysis at every lead
(MOS fits on them) and, per lead block, the sums EMOS fits on over the samples where the analysis and
every member are present. Log space is log(1 + x), x in µg/m³; cells are the flattened (level, lat, lon).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlens.common.reader import StoreReader
from dlens.common.species import LEAD_BLOCKS, MEMBERS, SPECIES_NAMES, lead_block
from dlens.evaluate import ensembles
from dlens.evaluate.weights import trailing_window


def to_log(field: np.ndarray) -> np.ndarray:
    """log(1 + x) with negative values clipped to 0; NaN stays NaN."""
    return np.log1p(np.maximum(field, 0.0)).astype(np.float32)


@dataclass
class EmosSums:
    """Sums over one lead block's complete samples (analysis and all members present), u = log members,
    y = log analysis: per region the Gram matrix Σuu', Σuy and the count; per cell Σu, Σy and the count."""

    gram: np.ndarray  # (region, member, member)
    cross: np.ndarray  # (region, member)
    count: np.ndarray  # (region,)
    member_sum: np.ndarray  # (member, cell)
    target_sum: np.ndarray  # (cell,)
    cell_count: np.ndarray  # (cell,)

    @classmethod
    def zeros(cls, regions: int, cells: int) -> EmosSums:
        m = len(MEMBERS)
        return cls(
            np.zeros((regions, m, m)), np.zeros((regions, m)), np.zeros(regions),
            np.zeros((m, cells)), np.zeros(cells), np.zeros(cells),
        )  # fmt: skip

    def add(self, members_log: np.ndarray, target_log: np.ndarray, region: np.ndarray) -> None:
        """Add one lead: members_log (member, cell), target_log (cell), region (cell,) index."""
        ok = np.isfinite(target_log) & np.isfinite(members_log).all(axis=0)
        u = np.where(ok, members_log, 0.0).astype(np.float64)
        y = np.where(ok, target_log, 0.0).astype(np.float64)
        self.member_sum += u
        self.target_sum += y
        self.cell_count += ok
        for r in np.unique(region[ok]):
            cells = ok & (region == r)
            self.gram[r] += u[:, cells] @ u[:, cells].T
            self.cross[r] += u[:, cells] @ y[cells]
            self.count[r] += cells.sum()

    def __add__(self, other: EmosSums) -> EmosSums:
        return EmosSums(*(a + b for a, b in zip(vars(self).values(), vars(other).values())))


@dataclass
class RunHistory:
    """What one past run gives the learned baselines, per species present."""

    run: np.datetime64
    median_log: dict[str, np.ndarray]  # species -> (lead, cell), NaN where no analysis
    analysis_log: dict[str, np.ndarray]  # species -> (lead, cell)
    emos: dict[str, list[EmosSums]]  # species -> one per lead block


def run_history_unit(
    url: str, run: str, region: np.ndarray, regions: int, target: str = "analysis"
) -> RunHistory:
    """Read one run's members and the `target` fields verifying it (a Ray task; the analysis, or a
    reanalysis: `analysis_log` holds what the baselines fit on); region: (cell,) index."""
    reader = StoreReader(url)
    t0 = np.datetime64(run, "h")
    history = RunHistory(t0, {}, {}, {})
    blocks = list(LEAD_BLOCKS)
    for species in SPECIES_NAMES:
        if not reader.member_presence(species, t0).any():
            continue
        leads = reader.spec.leads
        median_log = np.full((len(leads), region.size), np.nan, dtype=np.float32)
        analysis_log = median_log.copy()
        sums = [EmosSums.zeros(regions, region.size) for _ in blocks]
        for li, lead in enumerate(leads):
            truth = reader.analysis(species, t0 + np.timedelta64(lead, "h"), target=target)
            if truth is None:
                continue
            members = reader.members(species, t0, lead)
            median_log[li] = to_log(ensembles.median(members)).ravel()
            analysis_log[li] = to_log(truth).ravel()
            sums[blocks.index(lead_block(lead))].add(
                to_log(members).reshape(len(MEMBERS), -1), analysis_log[li], region
            )
        history.median_log[species] = median_log
        history.analysis_log[species] = analysis_log
        history.emos[species] = sums
    return history


def in_window(histories: list[RunHistory], run: np.datetime64, block: str, days: int) -> list[RunHistory]:
    """The past runs whose block-`block` leads are verified before `run`, within its trailing `days`."""
    first, last = trailing_window(run, block, days)
    return [h for h in histories if first <= np.datetime64(h.run, "D") <= last]
