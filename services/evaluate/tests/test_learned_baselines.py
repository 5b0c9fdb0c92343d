"""The learned baselines `mos` and `emos`: their fits against brute force, and on mock stores whose errors
are known (a local Ray, real zarr stores)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
import zarr
from scipy.stats import spearmanr

from dlens.common.layout import ANALYSIS
from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.common.writer import FieldWriter
from dlens.evaluate import emos, mos
from dlens.evaluate.baselines import ensure_baselines
from dlens.evaluate.regions import partition_for
from dlens.testing.mock_store import MockSkill, build_mock_store

START = datetime(2025, 3, 1)
DAYS = 16
SKILL = MockSkill(shared_bias=0.3, absent=((3, 0), (15, 2)))
TARGETS = [np.datetime64("2025-03-14T00", "h"), np.datetime64("2025-03-16T00", "h")]  # day 15 lacks a member
WINDOW = 8
LEADS = (0, 12, 24, 48, 72, 96)


def test_log_linear_fit_matches_least_squares_and_shrinks_few_samples():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 0.5, (400, 5))
    y = 0.4 + 0.8 * x + rng.normal(0, 0.05, x.shape)
    x[rng.random(x.shape) < 0.1] = np.nan
    intercept, slope, n = mos.fit_log_linear(x, y)
    for c in range(5):
        ok = np.isfinite(x[:, c])
        b, a = np.polyfit(x[ok, c], y[ok, c], 1)
        assert n[c] == ok.sum()
        assert slope[c] == pytest.approx(b, abs=0.01) and intercept[c] == pytest.approx(a, abs=0.04)
    few = mos.fit_log_linear(
        x[:2], x[:2] + 1.0
    )  # two samples, one log unit too low: pulled towards no change
    assert np.all((few[0] > 0) & (few[0] < 1.0)) and np.allclose(few[1], 1.0, atol=0.05)
    none = mos.fit_log_linear(np.full((3, 2), np.nan), np.full((3, 2), np.nan))
    assert (
        np.array_equal(none[0], [0, 0])
        and np.array_equal(none[1], [1, 1])
        and np.array_equal(none[2], [0, 0])
    )


def test_constrained_ridge_is_least_squares_summing_to_one(monkeypatch):
    rng = np.random.default_rng(2)
    z = rng.normal(0, 1, (5000, 4))
    y = z @ np.array([0.5, 0.3, 0.15, 0.05]) + rng.normal(0, 0.1, 5000)
    monkeypatch.setattr(emos, "RIDGE_SAMPLES", 0)
    w = emos.constrained_ridge(z.T @ z, z.T @ y, len(y))
    # brute force: eliminate the constraint, w = e4 + B v, least squares in v
    basis = np.vstack([np.eye(3), -np.ones(3)])
    v, *_ = np.linalg.lstsq(z @ basis, y - z[:, 3], rcond=None)
    np.testing.assert_allclose(w, np.array([0, 0, 0, 1.0]) + basis @ v, atol=1e-9)
    monkeypatch.setattr(emos, "RIDGE_SAMPLES", 10**9)  # an overwhelming prior: the equal weights
    np.testing.assert_allclose(emos.constrained_ridge(z.T @ z, z.T @ y, len(y)), 0.25, atol=1e-3)


@pytest.fixture(scope="module")
def learned(tmp_path_factory, ray_cluster) -> tuple[str, str]:
    """Two mock stores with a shared east-west bias of ±30 %, identical but for the analyses valid from the
    first target run on (tripled in the second), both given mos and emos for the target runs."""
    stores = []
    for name in ("mock", "future-changed"):
        url = str(tmp_path_factory.mktemp("learned") / f"{name}.zarr")
        build_mock_store(url, START, days=DAYS, leads=LEADS, skill=SKILL)
        if name != "mock":
            _triple_analyses_from(url, TARGETS[0])
        done = ensure_baselines(url, TARGETS, ["median", "mos", "emos"], 7, reference_days=WINDOW)
        assert not done.failed and done.computed == {"median": 2, "mos": 2, "emos": 2}
        stores.append(url)
    return stores[0], stores[1]


def _triple_analyses_from(url: str, first: np.datetime64) -> None:
    reader, writer = StoreReader(url), FieldWriter(url)
    for t, pos in reader.axis(ANALYSIS).items():
        if t >= first:
            for species in ("o3", "no2"):
                writer.write(ANALYSIS, species, (pos,), 3 * reader.analysis(species, t))


def _rmse(reader: StoreReader, name: str, species: str, run: np.datetime64) -> float:
    errors = [
        reader.product(name, species, run, lead) - reader.analysis(species, run + np.timedelta64(lead, "h"))
        for lead in reader.spec.leads
    ]
    return float(np.sqrt(np.mean(np.square(errors))))


def test_mos_and_emos_remove_a_known_gridpoint_bias(learned):
    reader = StoreReader(learned[0])
    for run in TARGETS:  # the second has a member absent: emos renormalises over the others
        for species in ("o3", "no2", "so2", "pm10"):
            median = _rmse(reader, "median", species, run)
            assert _rmse(reader, "mos", species, run) < 0.5 * median
            assert _rmse(reader, "emos", species, run) < 0.4 * median
    # mos divides the median by the map it was built with, cell by cell, with slopes near 1
    ratio = reader.product("mos", "no2", TARGETS[0], 24) / reader.product("median", "no2", TARGETS[0], 24)
    assert np.corrcoef(ratio.ravel(), 1 / SKILL.shared_bias_map(ratio.shape[1:]).ravel())[0, 1] > 0.95
    coefficients = zarr.open_group(learned[0], mode="r")["products/mos/coefficients"]
    slope, samples = coefficients[0, 1, :, 1], coefficients[0, 1, :, 2]  # no2, every lead
    assert np.median(np.abs(slope - 1)) < 0.15 and samples.min() >= WINDOW - 1


def test_emos_weights_follow_the_members_noise(learned):
    group = zarr.open_group(learned[0], mode="r")["products/emos"]
    names = group.attrs["regions"]
    region = partition_for(StoreReader(learned[0]).spec.domain).index
    land = names.index("AL-land")
    weights = group["member_weights"][0, 0, 0, :, 0]  # o3, block 000-024, (member, lat, lon)
    w = weights[:, region == land][:, 0]
    optimal = 1 / np.square(SKILL.noise)
    assert w.sum() == pytest.approx(1.0, abs=1e-5)
    assert spearmanr(w, optimal).statistic > 0.9
    np.testing.assert_allclose(w, optimal / optimal.sum(), atol=0.08)  # the ridge pulls towards 1/11
    assert np.isfinite(group["member_bias"][0]).all() and len(MEMBERS) == weights.shape[0]


def test_learned_baselines_use_no_analysis_valid_after_the_run(learned):
    """Tripling the analyses valid from the first target run on leaves its mos and emos as they were; the
    second target, two days later, learns from some of them and changes."""
    plain, changed = (StoreReader(url) for url in learned)
    first, second = TARGETS
    assert changed.analysis("o3", first) == pytest.approx(3 * plain.analysis("o3", first))
    for name in ("mos", "emos"):
        for lead in (0, 48, 96):  # the first and last blocks, whose windows lag 2 and 5 days
            np.testing.assert_array_equal(
                plain.product(name, "o3", first, lead), changed.product(name, "o3", first, lead)
            )
        assert not np.allclose(plain.product(name, "o3", second, 0), changed.product(name, "o3", second, 0))
