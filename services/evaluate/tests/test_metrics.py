"""Verification metrics: sufficient statistics against the `scores` library and brute-force references."""

from __future__ import annotations

import operator

import numpy as np
import pytest
import scores
import scores.spatial
import xarray as xr

from dlens.evaluate import metrics
from dlens.evaluate.metrics import (
    CONTINGENCY,
    METRICS,
    STATISTICS,
    block_draws,
    bootstrap_rmse_difference,
    categorical_scores,
    contingency_counts,
    fractions_sums,
    fss,
    holm,
    pair_statistics,
    scores_from_sums,
    sum_statistics,
    verdict,
)

DIMS = ("lead", "y", "x")
THRESHOLD = 30.0


@pytest.fixture
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """(lead, ny, nx) skewed positive fields, ~10 % NaNs placed independently, some f = o = 0 and f = o = threshold."""
    rng = np.random.default_rng(42)
    shape = (3, 30, 40)
    observed = rng.lognormal(3.0, 0.8, shape)
    forecast = observed * rng.lognormal(0.1, 0.4, shape) + rng.normal(0.0, 3.0, shape).clip(0.0)
    zero = rng.random(shape) < 0.02
    forecast[zero] = observed[zero] = 0.0
    at_threshold = rng.random(shape) < 0.02
    forecast[at_threshold] = observed[at_threshold] = THRESHOLD
    forecast[rng.random(shape) < 0.1] = np.nan
    observed[rng.random(shape) < 0.1] = np.nan
    return forecast, observed


def _brute_statistics(forecast: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """STATISTICS summed over all pairs with a plain Python loop."""
    total = dict.fromkeys(STATISTICS, 0.0)
    for f, o in zip(forecast.ravel().tolist(), observed.ravel().tolist()):
        if np.isnan(f) or np.isnan(o):
            continue
        for key, value in (("n", 1), ("f", f), ("o", o), ("ff", f * f), ("oo", o * o), ("fo", f * o)):
            total[key] += value
        total["abs"] += abs(f - o)
        if f + o > 0:
            total["n_pos"] += 1
            total["mnmb"] += (f - o) / (f + o)
            total["fge"] += abs(f - o) / (f + o)
    return np.array([total[key] for key in STATISTICS])


def test_public_names():
    assert STATISTICS == ("n", "f", "o", "ff", "oo", "fo", "abs", "n_pos", "mnmb", "fge")
    assert CONTINGENCY == ("hits", "misses", "false_alarms", "correct_negatives")
    assert list(METRICS) == ["rmse", "mae", "bias", "r", "mnmb", "fge", "variance_ratio"]
    assert all(m.best in ("low", "zero", "one", "high") for m in METRICS.values())
    assert METRICS["rmse"].units == "µg/m3" and METRICS["r"].units == "1"


def test_pair_statistics_match_brute_force(pairs):
    forecast, observed = (a.astype(np.float32) for a in pairs)  # float32 fields, float64 statistics
    per_pair = pair_statistics(forecast, observed)
    assert per_pair.shape == (*forecast.shape, len(STATISTICS)) and per_pair.dtype == np.float64
    assert not per_pair[np.isnan(forecast) | np.isnan(observed)].any()
    expected = _brute_statistics(forecast, observed)
    np.testing.assert_allclose(per_pair.sum(axis=(0, 1, 2)), expected, rtol=1e-12)
    np.testing.assert_allclose(sum_statistics(forecast, observed).sum(axis=(0, 1)), expected, rtol=1e-12)


def test_continuous_metrics_match_scores(pairs):
    forecast, observed = pairs
    sums = sum_statistics(forecast, observed)  # (lead, 1, S)
    assert sums.shape == (3, 1, len(STATISTICS))
    fcst, obs = xr.DataArray(forecast, dims=DIMS), xr.DataArray(observed, dims=DIMS)
    reference = {
        "rmse": scores.continuous.rmse,
        "mae": scores.continuous.mae,
        "bias": scores.continuous.additive_bias,
        "r": scores.continuous.correlation.pearsonr,
    }
    for name, score in reference.items():
        np.testing.assert_allclose(
            METRICS[name](sums[:, 0]), score(fcst, obs, preserve_dims="lead"), rtol=1e-10
        )
        # streaming: sums over leads add up to the score over everything
        np.testing.assert_allclose(METRICS[name](sums.sum(axis=(0, 1))), score(fcst, obs), rtol=1e-10)
    assert np.all(METRICS["mae"](sums) > 0) and np.all(METRICS["bias"](sums) > 0)


def test_mnmb_fge_match_brute_force(pairs):
    forecast, observed = pairs
    sums = sum_statistics(forecast, observed)
    for lead in range(forecast.shape[0]):
        mnmb = fge = 0.0
        count = 0
        for f, o in zip(forecast[lead].ravel().tolist(), observed[lead].ravel().tolist()):
            if np.isfinite(f) and np.isfinite(o) and f + o > 0:
                mnmb += (f - o) / (f + o)
                fge += abs(f - o) / (f + o)
                count += 1
        assert count < np.sum(
            np.isfinite(forecast[lead]) & np.isfinite(observed[lead])
        )  # f = o = 0 pairs left out
        assert METRICS["mnmb"](sums[lead, 0]) == pytest.approx(2 * mnmb / count, rel=1e-12)
        assert METRICS["fge"](sums[lead, 0]) == pytest.approx(2 * fge / count, rel=1e-12)


def test_scores_from_sums(pairs):
    sums = sum_statistics(*pairs)
    result = scores_from_sums(sums)
    assert set(result) == {*METRICS, "n"}
    assert result["n"].dtype == np.int64 and result["n"].shape == (3, 1)
    np.testing.assert_array_equal(
        result["n"][:, 0], np.sum(np.isfinite(pairs[0]) & np.isfinite(pairs[1]), axis=(1, 2))
    )
    for name, metric in METRICS.items():
        np.testing.assert_array_equal(result[name], metric(sums))


def test_region_masks_match_brute_force(pairs, monkeypatch):
    forecast, observed = pairs
    rng = np.random.default_rng(1)
    masks = rng.random((4, *forecast.shape[1:])) < 0.4  # overlapping regions
    masks[3] = False  # an empty region
    sums = sum_statistics(forecast, observed, masks)
    assert sums.shape == (3, 4, len(STATISTICS))
    for lead in range(forecast.shape[0]):
        for k, mask in enumerate(masks):
            np.testing.assert_allclose(
                sums[lead, k], _brute_statistics(forecast[lead][mask], observed[lead][mask]), rtol=1e-12
            )
    # no mask = one all-True region; blocks smaller than a field give the same sums
    everything = np.ones((1, *forecast.shape[1:]), dtype=bool)
    np.testing.assert_allclose(
        sum_statistics(forecast, observed), sum_statistics(forecast, observed, everything)
    )
    monkeypatch.setattr(metrics, "_BLOCK", 77)
    np.testing.assert_allclose(sum_statistics(forecast, observed, masks), sums, rtol=1e-12)
    np.testing.assert_array_equal(
        contingency_counts(forecast, observed, THRESHOLD, masks),
        np.stack([contingency_counts(f, o, THRESHOLD, masks) for f, o in zip(forecast, observed)]),
    )


def test_field_shape_must_match():
    with pytest.raises(ValueError, match="must match"):
        sum_statistics(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="must match"):
        sum_statistics(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((1, 3, 2), dtype=bool))


def test_contingency_matches_scores(pairs):
    forecast, observed = pairs
    counts = contingency_counts(forecast, observed, THRESHOLD)
    assert counts.shape == (3, 1, 4) and counts.dtype == np.int64
    fcst, obs = xr.DataArray(forecast, dims=DIMS), xr.DataArray(observed, dims=DIMS)
    events = scores.categorical.ThresholdEventOperator(default_op_fn=operator.gt)
    table = events.make_contingency_manager(fcst, obs, event_threshold=THRESHOLD).transform(
        preserve_dims="lead"
    )
    expected = table.get_counts()
    for key, column in zip(
        ("tp_count", "fn_count", "fp_count", "tn_count"), np.moveaxis(counts[:, 0], -1, 0)
    ):
        np.testing.assert_array_equal(column, expected[key])
    result = categorical_scores(counts[:, 0])
    np.testing.assert_allclose(result["pod"], table.probability_of_detection(), rtol=1e-12)
    np.testing.assert_allclose(result["far"], table.false_alarm_ratio(), rtol=1e-12)
    np.testing.assert_allclose(result["csi"], table.critical_success_index(), rtol=1e-12)
    np.testing.assert_allclose(result["sedi"], table.symmetric_extremal_dependence_index(), rtol=1e-12)
    # SEDI's logarithms need a hit rate and a false-alarm rate strictly between 0 and 1
    undefined = categorical_scores(np.array([[5, 0, 3, 90], [0, 4, 3, 90], [2, 2, 0, 90], [2, 2, 5, 0]]))
    assert np.isnan(undefined["sedi"]).all() and np.isfinite(undefined["csi"]).all()


def test_event_is_strictly_above_threshold():
    values = np.array([[THRESHOLD, THRESHOLD + 1e-9, np.nan, 1.0]])
    counts = contingency_counts(values, np.full_like(values, THRESHOLD), THRESHOLD)
    np.testing.assert_array_equal(counts, [[0, 0, 1, 2]])  # one false alarm, NaN pair not counted


@pytest.mark.filterwarnings("error")
def test_all_nan_gives_nan_scores():
    nan = np.full((5, 6), np.nan)
    sums = sum_statistics(nan, np.ones((5, 6)))
    assert sums.shape == (1, len(STATISTICS)) and not sums.any()
    result = scores_from_sums(sums)
    assert result["n"][0] == 0
    assert all(np.isnan(result[name]).all() for name in METRICS)
    counts = contingency_counts(nan, nan, THRESHOLD)
    assert not counts.any()
    assert all(np.isnan(v).all() for v in categorical_scores(counts).values())


@pytest.mark.filterwarnings("error")
def test_undefined_scores_are_nan():
    rng = np.random.default_rng(3)
    observed = rng.lognormal(3.0, 0.5, (40, 50))
    constant = np.full_like(observed, 42.3)
    for f, o in ((constant, observed), (observed, constant)):
        result = scores_from_sums(sum_statistics(f, o))
        assert np.isnan(result["r"]).all()
        assert np.isfinite(result["rmse"]).all() and np.isfinite(result["mnmb"]).all()
    zeros = scores_from_sums(sum_statistics(np.zeros((3, 4)), np.zeros((3, 4))))
    assert zeros["n"][0] == 12 and zeros["rmse"][0] == 0.0 and zeros["bias"][0] == 0.0
    assert np.isnan(zeros["mnmb"]).all() and np.isnan(zeros["fge"]).all() and np.isnan(zeros["r"]).all()
    perfect = scores_from_sums(sum_statistics(observed, observed))
    assert perfect["rmse"][0] == pytest.approx(0.0, abs=1e-6) and perfect["r"][0] == pytest.approx(1.0)


def _runs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums (P=4, R=25, S), SSE and n (P, R) per product and run: 0 the reference, 1 better every run, 2 identical."""
    rng = np.random.default_rng(7)
    sums = []
    for _ in range(25):
        observed = rng.lognormal(3.0, 0.6, (12, 15))
        error = rng.normal(rng.normal(0.0, 3.0), 8.0, observed.shape)  # errors correlated within a run
        other = rng.normal(rng.normal(0.0, 3.0), 8.0, observed.shape)
        products = [observed + error, observed + 0.6 * error, observed + error, observed + other]
        sums.append([sum_statistics(p, observed)[0] for p in products])
    sums = np.array(sums).transpose(1, 0, 2)
    sums[3, 5] = sum_statistics(np.full((12, 15), np.nan), observed)[0]  # product 3 misses run 5
    sse = (
        sums[..., STATISTICS.index("ff")]
        - 2 * sums[..., STATISTICS.index("fo")]
        + sums[..., STATISTICS.index("oo")]
    )
    return sums, sse, sums[..., STATISTICS.index("n")]


def test_bootstrap_point_estimates_and_verdicts():
    sums, sse, n = _runs()
    result = bootstrap_rmse_difference(sse, n, reference=0, resamples=500)
    kept = np.arange(25) != 5
    rmse = METRICS["rmse"](sums[:, kept].sum(axis=1))
    np.testing.assert_allclose(result["rmse"], rmse, rtol=1e-10)
    np.testing.assert_allclose(result["difference"], rmse - rmse[0], rtol=1e-10, atol=1e-12)
    assert result["difference"][0] == result["ci_low"][0] == result["ci_high"][0] == 0.0
    assert result["ci_low"][2] == result["ci_high"][2] == 0.0  # identical to the reference
    verdicts = [verdict(lo, hi) for lo, hi in zip(result["ci_low"], result["ci_high"])]
    assert verdicts[:3] == ["not significant", "better", "not significant"]
    flipped = bootstrap_rmse_difference(sse, n, reference=1, resamples=500)
    assert verdict(flipped["ci_low"][0], flipped["ci_high"][0]) == "worse"


def test_bootstrap_matches_brute_force_loop():
    _, sse, n = _runs()
    resamples, confidence, seed = 300, 0.9, 11
    result = bootstrap_rmse_difference(
        sse, n, reference=2, resamples=resamples, confidence=confidence, seed=seed
    )
    sse, n = np.delete(sse, 5, axis=1), np.delete(n, 5, axis=1)  # the run product 3 misses is dropped
    draws = np.random.default_rng(seed).integers(0, sse.shape[1], size=(resamples, sse.shape[1]))
    differences = []
    for draw in draws:
        rmse = [np.sqrt(sum(sse[p, r] for r in draw) / sum(n[p, r] for r in draw)) for p in range(len(sse))]
        differences.append(np.array(rmse) - rmse[2])
    low, high = np.quantile(differences, [0.05, 0.95], axis=0)
    np.testing.assert_allclose(result["ci_low"], low, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result["ci_high"], high, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("runs", "block"), [(1, 1), (3, 4), (4, 4)])
def test_bootstrap_of_a_single_block_claims_nothing(runs, block):
    """Every resample of one block is the sample itself: no interval, no p-value (not a p of 0)."""
    _, sse, n = _runs()
    result = bootstrap_rmse_difference(sse[:, :runs], n[:, :runs], 0, resamples=100, block=block)
    assert np.isnan(result["ci_low"]).all() and np.isnan(result["p_value"]).all()
    assert verdict(result["ci_low"][1], result["ci_high"][1]) == "not significant"
    np.testing.assert_allclose(result["rmse"], np.sqrt(sse[:, :runs].sum(axis=1) / n[:, :runs].sum(axis=1)))
    assert np.isfinite(
        bootstrap_rmse_difference(sse[:, :5], n[:, :5], 0, resamples=100, block=4)["p_value"][1]
    )


def test_bootstrap_is_deterministic():
    _, sse, n = _runs()
    first, second = (bootstrap_rmse_difference(sse, n, 0, resamples=200, seed=5) for _ in range(2))
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    other = bootstrap_rmse_difference(sse, n, 0, resamples=200, seed=6)
    assert not np.array_equal(other["ci_low"], first["ci_low"])


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (-2.0, -0.1, "better"),
        (0.1, 2.0, "worse"),
        (-0.1, 0.2, "not significant"),
        (0.0, 0.0, "not significant"),
    ],
)
def test_verdict(low, high, expected):
    assert verdict(low, high) == expected


@pytest.mark.filterwarnings("error")
def test_bootstrap_without_common_runs_is_nan():
    result = bootstrap_rmse_difference(np.ones((2, 3)), np.array([[1, 1, 1], [0, 0, 0]]), reference=0)
    assert all(np.isnan(v).all() and v.shape == (2,) for v in result.values())


def test_moving_blocks_keep_consecutive_runs_together():
    draws = block_draws(10, 200, 4, np.random.default_rng(3))
    assert draws.shape == (200, 10) and draws.min() >= 0 and draws.max() <= 9
    # within each resample, runs come in runs of consecutive indices, restarting every 4 draws
    steps = np.diff(draws, axis=1)
    assert (steps[:, [0, 1, 2, 4, 5, 6, 8]] == 1).all()
    plain = block_draws(10, 200, 1, np.random.default_rng(3))
    np.testing.assert_array_equal(plain, np.random.default_rng(3).integers(0, 10, size=(200, 10)))


def test_bootstrap_p_value_and_holm():
    rng = np.random.default_rng(4)
    n = np.full((3, 20), 100.0)
    sse = np.stack([np.full(20, 400.0), np.full(20, 100.0), 400.0 + rng.normal(0, 20, 20)])
    result = bootstrap_rmse_difference(sse, n, reference=0, resamples=400, block=4)
    assert np.isnan(result["p_value"][0]) and result["p_value"][1] == 0.0  # always better
    assert result["p_value"][2] > 0.05  # noise around the reference
    # Holm by brute force: sorted ascending, scaled by m, m-1, …, running maximum, capped at 1
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.5])
    np.testing.assert_allclose(holm(p), [0.04, 0.09, 0.09, np.nan, 0.5])


def test_variance_ratio_matches_numpy(pairs):
    forecast, observed = pairs
    sums = sum_statistics(forecast, observed)  # (lead, 1, S)
    for lead in range(forecast.shape[0]):
        ok = np.isfinite(forecast[lead]) & np.isfinite(observed[lead])
        expected = forecast[lead][ok].std() / observed[lead][ok].std()
        assert METRICS["variance_ratio"](sums[lead, 0]) == pytest.approx(expected, rel=1e-9)
    smooth = sum_statistics(np.full((4, 4), 3.0), np.arange(16.0).reshape(4, 4))
    assert METRICS["variance_ratio"](smooth[0]) == 0.0
    assert np.isnan(
        METRICS["variance_ratio"](sum_statistics(np.arange(16.0).reshape(4, 4), np.ones((4, 4)))[0])
    )


@pytest.mark.parametrize("window", [1, 3, 7])
def test_fractions_skill_score_matches_scores(pairs, window):
    forecast, observed = pairs
    forecast, observed = np.nan_to_num(forecast), np.nan_to_num(observed)  # scores' FSS has no NaN rule
    sums = fractions_sums(forecast, observed, THRESHOLD, window)
    assert sums.shape == (3, 3)
    fcst = xr.DataArray(forecast, dims=DIMS)
    obs = xr.DataArray(observed, dims=DIMS)
    for lead in range(3):
        expected = scores.spatial.fss_2d_single_field(
            forecast[lead], observed[lead], event_threshold=THRESHOLD, window_size=(window, window)
        )
        assert fss(sums[lead]) == pytest.approx(float(expected), rel=1e-9)
    aggregated = scores.spatial.fss_2d(
        fcst, obs, event_threshold=THRESHOLD, window_size=(window, window), spatial_dims=("y", "x")
    )
    assert fss(sums.sum(axis=0)) == pytest.approx(float(aggregated), rel=1e-9)  # sums add over fields


def test_fractions_skill_score_edge_cases():
    quiet = np.zeros((6, 6))
    assert np.isnan(fss(fractions_sums(quiet, quiet, THRESHOLD, 3)))  # no event in either field
    event = quiet.copy()
    event[2, 2] = 100.0
    shifted = np.roll(event, 1, axis=1)
    assert fss(fractions_sums(event, event, THRESHOLD, 3)) == 1.0
    assert fss(fractions_sums(shifted, event, THRESHOLD, 1)) == 0.0  # a miss at grid scale
    assert 0.5 < fss(fractions_sums(shifted, event, THRESHOLD, 3)) < 1.0  # close enough at 3 × 3
    nan = event.copy()
    nan[2, 2] = np.nan  # a missing cell is an event in neither field
    assert np.isnan(fss(fractions_sums(nan, event, THRESHOLD, 3)))
    assert not fractions_sums(event, event, THRESHOLD, 7).any()  # a window larger than the field
