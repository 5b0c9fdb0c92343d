"""Synthetic members behave like CAMS members: the median beats each one, skills differ, errors
grow with lead time (DESIGN.md §5)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from dlens.common.grid import parse_domain
from dlens.common.species import SPECIES_NAMES
from dlens.ingest.synthetic import SyntheticGenerator

RUNS = [datetime(2018, 3, 10) + timedelta(days=d) for d in range(4)]
LEADS = list(range(0, 67, 6))


@pytest.fixture(scope="module")
def scores() -> dict[str, dict[str, np.ndarray]]:
    """Squared errors vs the analysis per species: members by run and lead, and the median."""
    gen = SyntheticGenerator(parse_domain("demo"), seed=0)
    out = {}
    for sp in SPECIES_NAMES:
        member_mse = np.full((len(RUNS), len(LEADS), 11), np.nan)
        median_mse = np.zeros((len(RUNS), len(LEADS)))
        for r, run in enumerate(RUNS):
            for li, lead in enumerate(LEADS):
                fields = gen.members(sp, run, lead)
                target = gen.analysis(sp, run + timedelta(hours=lead))
                err = (fields - target).astype(np.float64)
                member_mse[r, li] = (err**2).mean(axis=(1, 2))
                median_mse[r, li] = ((np.nanmedian(fields, axis=0) - target) ** 2).mean()
        out[sp] = {"member": member_mse, "median": median_mse}
    return out


@pytest.mark.parametrize("species", SPECIES_NAMES)
def test_median_beats_every_member(scores, species):
    s = scores[species]
    member_rmse = np.sqrt(np.nanmean(s["member"], axis=(0, 1)))
    median_rmse = np.sqrt(s["median"].mean())
    assert np.isfinite(member_rmse).all()
    assert median_rmse < 0.97 * member_rmse.min(), (median_rmse, member_rmse)


@pytest.mark.parametrize("species", SPECIES_NAMES)
def test_members_differ_in_skill(scores, species):
    member_rmse = np.sqrt(np.nanmean(scores[species]["member"], axis=(0, 1)))
    assert member_rmse.max() > 1.4 * member_rmse.min()
    assert len(np.unique(np.round(member_rmse, 6))) == 11


@pytest.mark.parametrize("species", SPECIES_NAMES)
def test_error_grows_with_lead(scores, species):
    """Forecasts of the same valid times from runs one or two days apart (lead h vs h + 24 or
    h + 48), so that only the lead differs, not the weather of the day."""
    s = scores[species]
    li = LEADS.index

    def ratio(mse: np.ndarray, days: int) -> float:
        pairs = [(r, h) for r in range(days, len(RUNS)) for h in (0, 6, 12, 18)]
        late = np.mean([mse[r - days, li(h + 24 * days)] for r, h in pairs])
        return late / np.mean([mse[r, li(h)] for r, h in pairs])

    member_mse = np.nanmean(s["member"], axis=2)
    assert ratio(member_mse, 1) > 1.0
    assert ratio(member_mse, 2) > 1.1
    assert ratio(s["median"], 2) > 1.1  # the median's 24 h growth is small next to its static error
