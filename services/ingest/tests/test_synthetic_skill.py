"""Synthetic members behave like CAMS members (DESIGN.md §5): the median beats most of them and the best
one by a few to twenty per cent, skills differ by member and by place, errors grow with lead time. The
de-biasing band (5–20 % of the median's RMSE) needs months of runs: bench/synthetic.py measures it."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from dlens.common.grid import parse_domain
from dlens.common.species import SPECIES_NAMES
from dlens.ingest.synthetic import SyntheticGenerator
from dlens.ingest.synthetic.members import member_median

RUNS = [datetime(2018, 3, 10) + timedelta(days=d) for d in range(0, 12, 2)]
LEADS = list(range(0, 73, 12))


@pytest.fixture(scope="module")
def scores() -> dict[str, dict[str, np.ndarray]]:
    """Squared errors vs the analysis per species, run and lead: each member's by domain half, and the
    median's."""
    gen = SyntheticGenerator(parse_domain("demo"), seed=0)
    out = {}
    for sp in SPECIES_NAMES:
        member_mse = np.full((len(RUNS), len(LEADS), 11, 2), np.nan)
        median_mse = np.zeros((len(RUNS), len(LEADS)))
        for r, run in enumerate(RUNS):
            for li, lead in enumerate(LEADS):
                fields = gen.members(sp, run, lead)
                target = gen.analysis(sp, run + timedelta(hours=lead))
                err = (fields - target).astype(np.float64)
                half = err.shape[1] // 2
                member_mse[r, li, :, 0] = (err[:, :half] ** 2).mean(axis=(1, 2))
                member_mse[r, li, :, 1] = (err[:, half:] ** 2).mean(axis=(1, 2))
                median_mse[r, li] = ((member_median(fields) - target) ** 2).mean()
        out[sp] = {"member": member_mse, "median": median_mse}
    return out


@pytest.mark.parametrize("species", SPECIES_NAMES)
def test_the_median_beats_most_members_and_the_best_by_a_cams_like_margin(scores, species):
    s = scores[species]
    member_rmse = np.sqrt(np.nanmean(s["member"], axis=(0, 1, 3)))
    median_rmse = np.sqrt(s["median"].mean())
    assert np.isfinite(member_rmse).all()
    assert np.sum(member_rmse > median_rmse) >= 8, (median_rmse, member_rmse)
    assert 0.75 < median_rmse / member_rmse.min() < 0.99, (median_rmse, member_rmse.min())


@pytest.mark.parametrize("species", SPECIES_NAMES)
def test_members_differ_in_skill_and_the_best_depends_on_the_place(scores, species):
    member = scores[species]["member"]
    member_rmse = np.sqrt(np.nanmean(member, axis=(0, 1, 3)))
    assert member_rmse.max() > 1.3 * member_rmse.min()
    assert len(np.unique(np.round(member_rmse, 6))) == 11
    by_half = np.sqrt(np.nanmean(member, axis=(0, 1)))  # (member, half)
    ranks = [np.argsort(np.argsort(by_half[:, h])) for h in (0, 1)]
    assert (ranks[0] != ranks[1]).any()  # some member is better in one half of the domain, worse in the other


@pytest.mark.parametrize("species", SPECIES_NAMES)
def test_error_grows_with_lead(scores, species):
    """Forecasts of the same valid times from runs two days apart (lead h vs h + 48), so that only the lead
    differs, not the weather of the day."""
    s = scores[species]
    li = LEADS.index

    def ratio(mse: np.ndarray) -> float:
        pairs = [(r, h) for r in range(1, len(RUNS)) for h in (0, 12, 24)]
        late = np.mean([mse[r - 1, li(h + 48)] for r, h in pairs])  # RUNS are two days apart
        return late / np.mean([mse[r, li(h)] for r, h in pairs])

    member_mse = np.nanmean(s["member"], axis=(2, 3))
    assert ratio(member_mse) > 1.1
    assert ratio(s["median"]) > 1.1
