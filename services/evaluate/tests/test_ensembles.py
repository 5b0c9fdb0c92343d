"""Baseline combinations and trailing-skill weights, on hand-built members."""

import numpy as np
import pytest

from dlens.evaluate import ensembles
from dlens.evaluate.weights import MemberSkill, block_lag_days, inverse_mse_weights

NAN = np.nan


def members(*values) -> np.ndarray:
    """(member, 1, 1) fields holding the given values (NaN = absent)."""
    return np.array(values, dtype=np.float32).reshape(-1, 1, 1)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((5, 1, 3), 3.0),  # odd count: the middle value
        ((4, 1, 3, 10), 3.5),  # even count: the mean of the two middle values
        ((4, NAN, 1, 3, 10, NAN), 3.5),  # missing members are left out, not counted as zero
        ((NAN, 7, NAN), 7.0),  # one member present
    ],
)
def test_median_follows_cams_semantics(values, expected):
    assert ensembles.median(members(*values))[0, 0] == pytest.approx(expected)


def test_no_member_present_gives_nan_without_warnings():
    with np.errstate(all="raise"):
        for combine in (ensembles.median, ensembles.mean):
            assert np.isnan(combine(members(NAN, NAN))[0, 0])
        assert np.isnan(ensembles.weighted(members(NAN, NAN), np.array([0.5, 0.5]))[0, 0])
        assert np.isnan(ensembles.best_member(members(NAN, NAN), np.array([0.5, 0.5]))[0, 0])


def test_weighted_renormalises_over_present_members():
    w = np.array([0.5, 0.3, 0.2])
    # Constant fields of ones: any weighting that sums to 1 over the members present returns 1.
    for present in ((1, 1, 1), (1, NAN, 1), (NAN, NAN, 1)):
        assert ensembles.weighted(members(*present), w)[0, 0] == pytest.approx(1.0)
    assert ensembles.weighted(members(10, NAN, 20), w)[0, 0] == pytest.approx((0.5 * 10 + 0.2 * 20) / 0.7)


def test_best_member_falls_back_to_the_next_best_present():
    w = np.array([0.1, 0.6, 0.3])
    assert ensembles.best_member(members(1, 2, 3), w)[0, 0] == 2
    assert ensembles.best_member(members(1, NAN, 3), w)[0, 0] == 3


def test_inverse_mse_weights_sum_to_one_and_rank_members():
    sse = np.array([1.0, 4.0, 16.0, 0.0])
    n = np.array([1.0, 1.0, 1.0, 0.0])  # the last member has no verified history
    w, rmse = inverse_mse_weights(sse, n)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] > w[1] > w[2]
    assert w[0] / w[1] == pytest.approx(4.0)
    assert w[3] == pytest.approx(w[1])  # neutral: the median inverse MSE of the others
    np.testing.assert_allclose(rmse[:3], [1, 2, 4])
    equal, _ = inverse_mse_weights(np.zeros(3), np.zeros(3))
    np.testing.assert_allclose(equal, 1 / 3)


def test_trailing_window_uses_only_runs_verified_before_the_run():
    runs = np.arange("2025-01-01", "2025-01-21", dtype="datetime64[D]")
    sse = np.zeros((len(runs), 4, 2))
    sse[:, :, 0] = np.arange(len(runs))[:, None]  # member 0: sse = day index
    skill = MemberSkill(runs, sse, np.ones_like(sse))
    run = np.datetime64("2025-01-15")
    for block, lag in (("000-024", 2), ("025-048", 3), ("049-072", 4), ("073-096", 5)):
        assert block_lag_days(block) == lag
        total, n = skill.window(run, block, days=3)
        last = 14 - lag  # index of the newest run in the window
        assert n[0] == 3 and total[0] == last + (last - 1) + (last - 2)
