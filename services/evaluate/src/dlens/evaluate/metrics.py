"""Verification metrics from streamed sufficient statistics.

Each forecast field is reduced to a few summed statistics per region (`sum_statistics`); sums from many
fields add up, and every score is computed from the totals at the end (`METRICS`, `scores_from_sums`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import prod

import numpy as np

STATISTICS: tuple[str, ...] = ("n", "f", "o", "ff", "oo", "fo", "abs", "n_pos", "mnmb", "fge")
CONTINGENCY: tuple[str, ...] = ("hits", "misses", "false_alarms", "correct_negatives")
#: Sums of the fractions skill score: Σ(Pf − Po)², ΣPf², ΣPo² over the windows of the fields.
FRACTIONS: tuple[str, ...] = ("fss_diff", "fss_forecast", "fss_observed")

#: Elements per block in the streaming reductions: bounds temporaries and keeps them in cache.
_BLOCK = 1 << 16
#: A variance below this fraction of the sum of squares is rounding noise: the field is constant.
_ZERO_VARIANCE = 1e-10


def _pair_rows(forecast: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per-pair statistics stacked first, (len(STATISTICS), *shape), zero where a pair is not finite."""
    out = np.empty((len(STATISTICS), *forecast.shape))
    n, f, o, ff, oo, fo, abs_, n_pos, mnmb, fge = out
    valid = np.isfinite(forecast) & np.isfinite(observed)
    np.copyto(n, valid)
    f[...] = np.where(valid, forecast, 0.0)
    o[...] = np.where(valid, observed, 0.0)
    np.multiply(f, f, out=ff)
    np.multiply(o, o, out=oo)
    np.multiply(f, o, out=fo)
    diff = f - o
    np.abs(diff, out=abs_)
    total = f + o
    pos = total > 0
    np.copyto(n_pos, pos)
    total = np.where(pos, total, np.inf)  # pairs without f + o > 0 add 0 to mnmb and fge
    np.divide(diff, total, out=mnmb)
    np.divide(abs_, total, out=fge)
    return out


def _event_rows(forecast: np.ndarray, observed: np.ndarray, threshold: float) -> np.ndarray:
    """Contingency indicators stacked first, (len(CONTINGENCY), *shape); pairs with a NaN are all zero."""
    valid = ~(np.isnan(forecast) | np.isnan(observed))
    f_event, o_event = forecast > threshold, observed > threshold
    hits = f_event & o_event
    misses = o_event & ~f_event & valid
    false_alarms = f_event & ~o_event & valid
    correct_negatives = valid & ~(f_event | o_event)
    return np.stack((hits, misses, false_alarms, correct_negatives)).astype(np.float64)


def _reduce(
    rows: Callable[[np.ndarray, np.ndarray], np.ndarray],
    width: int,
    forecast: np.ndarray,
    observed: np.ndarray,
    masks: np.ndarray | None,
) -> np.ndarray:
    """Sum `rows` (width, *shape) over each region, block by block: (*leading, K, width) float64."""
    forecast, observed = np.asarray(forecast), np.asarray(observed)
    field_shape = forecast.shape[-2:] if masks is None else np.shape(masks)[1:]
    if forecast.shape != observed.shape or forecast.shape[-len(field_shape) :] != field_shape:
        raise ValueError(
            f"forecast {forecast.shape} and observed {observed.shape} must match and end in {field_shape}"
        )
    leading = forecast.shape[: forecast.ndim - len(field_shape)]
    cells = prod(field_shape)
    f = forecast.reshape(-1, cells)
    o = observed.reshape(-1, cells)
    m = None if masks is None else np.reshape(masks, (-1, cells))
    regions = 1 if m is None else m.shape[0]
    total = np.zeros((width, f.shape[0], regions))
    step = max(1, _BLOCK // max(1, f.shape[0]))
    for start in range(0, cells, step):
        block = slice(start, start + step)
        fb = f[:, block]
        r = rows(fb, o[:, block]).reshape(-1, fb.shape[1])  # (width * L, b): one matmul for all rows
        part = r.sum(axis=-1, keepdims=True) if m is None else r @ m[:, block].T.astype(np.float64)
        total += part.reshape(total.shape)
    return np.moveaxis(total, 0, -1).reshape(*leading, regions, width)


def pair_statistics(forecast: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per-pair contributions, (*forecast.shape, len(STATISTICS)) float64; zero where a pair is not finite."""
    return np.moveaxis(_pair_rows(np.asarray(forecast), np.asarray(observed)), 0, -1)


def sum_statistics(forecast: np.ndarray, observed: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """Sums of the statistics over each region of the field: (*leading, K, len(STATISTICS)) float64.

    `masks` is a boolean (K, *field) stack of regions; `forecast` and `observed` have the same shape, ending
    in the field dims, and the leading dims before them are kept. `None` is one region: the whole field,
    taken as the trailing two (ny, nx) dims.
    """
    return _reduce(_pair_rows, len(STATISTICS), forecast, observed, masks)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def _rmse(s: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.sqrt(np.maximum(_ratio(s["ff"] - 2 * s["fo"] + s["oo"], s["n"]), 0.0))


def _variance_ratio(s: Mapping[str, np.ndarray]) -> np.ndarray:
    """Forecast standard deviation over the analysis', both about their own means: below 1, a forecast
    smoother than what it forecasts (what RMSE rewards and a forecaster cannot use for peaks)."""
    var_f = _ratio(s["ff"], s["n"]) - _ratio(s["f"], s["n"]) ** 2
    var_o = _ratio(s["oo"], s["n"]) - _ratio(s["o"], s["n"]) ** 2
    defined = var_o > _ZERO_VARIANCE * _ratio(s["oo"], s["n"])
    return _ratio(np.sqrt(np.maximum(var_f, 0.0)), np.sqrt(np.where(defined, var_o, 0.0)))


def _pearson_r(s: Mapping[str, np.ndarray]) -> np.ndarray:
    mean_f, mean_o = _ratio(s["f"], s["n"]), _ratio(s["o"], s["n"])
    sxx, syy, sxy = s["ff"] - mean_f * s["f"], s["oo"] - mean_o * s["o"], s["fo"] - mean_f * s["o"]
    defined = (sxx > _ZERO_VARIANCE * s["ff"]) & (syy > _ZERO_VARIANCE * s["oo"])
    return np.clip(_ratio(sxy, np.sqrt(np.where(defined, sxx * syy, 0.0))), -1.0, 1.0)


@dataclass(frozen=True)
class Metric:
    """One score computed from summed statistics; `best` says how to read it: "low", "zero", "one" or
    "high"."""

    name: str
    long_name: str
    units: str
    best: str
    formula: Callable[[Mapping[str, np.ndarray]], np.ndarray] = field(repr=False)

    def __call__(self, sums: np.ndarray) -> np.ndarray:
        """Score from sums (..., len(STATISTICS)) -> (...); NaN where undefined."""
        sums = np.asarray(sums, dtype=np.float64)
        return self.formula(dict(zip(STATISTICS, np.moveaxis(sums, -1, 0))))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("rmse", "root-mean-square error", "µg/m3", "low", _rmse),
        Metric("mae", "mean absolute error", "µg/m3", "low", lambda s: _ratio(s["abs"], s["n"])),
        Metric("bias", "mean bias", "µg/m3", "zero", lambda s: _ratio(s["f"] - s["o"], s["n"])),
        Metric("r", "Pearson correlation", "1", "high", _pearson_r),
        Metric(
            "mnmb", "modified normalised mean bias", "1", "zero", lambda s: _ratio(2 * s["mnmb"], s["n_pos"])
        ),
        Metric("fge", "fractional gross error", "1", "low", lambda s: _ratio(2 * s["fge"], s["n_pos"])),
        Metric("variance_ratio", "forecast std / analysis std", "1", "one", _variance_ratio),
    )
}


def scores_from_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of METRICS from summed statistics, plus "n" (int64 pair counts)."""
    n = np.asarray(sums)[..., STATISTICS.index("n")].astype(np.int64)
    return {name: metric(sums) for name, metric in METRICS.items()} | {"n": n}


def contingency_counts(
    forecast: np.ndarray, observed: np.ndarray, threshold: float, masks: np.ndarray | None = None
) -> np.ndarray:
    """(..., K, len(CONTINGENCY)) int64 counts of events (value > threshold), dims as in `sum_statistics`.

    Pairs with a NaN are not counted.
    """
    counts = _reduce(lambda f, o: _event_rows(f, o, threshold), len(CONTINGENCY), forecast, observed, masks)
    return counts.astype(np.int64)


def _sedi(pod: np.ndarray, pofd: np.ndarray) -> np.ndarray:
    """Symmetric extremal dependence index (Ferro & Stephenson, Wea. Forecasting 26, 2011); NaN where the hit
    rate or the false-alarm rate is 0 or 1 (its logarithms are then undefined)."""
    defined = (pod > 0) & (pod < 1) & (pofd > 0) & (pofd < 1)
    h, f = np.where(defined, pod, 0.5), np.where(defined, pofd, 0.25)
    num = np.log(f) - np.log(h) + np.log1p(-h) - np.log1p(-f)
    den = np.log(f) + np.log(h) + np.log1p(-h) + np.log1p(-f)
    return np.where(defined, num / den, np.nan)


def categorical_scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    """POD, FAR (false alarm ratio), CSI and SEDI from counts (..., len(CONTINGENCY)); NaN where undefined."""
    hits, misses, false_alarms, correct_negatives = np.moveaxis(np.asarray(counts, dtype=np.float64), -1, 0)
    pod = _ratio(hits, hits + misses)
    return {
        "pod": pod,
        "far": _ratio(false_alarms, hits + false_alarms),
        "csi": _ratio(hits, hits + misses + false_alarms),
        "sedi": _sedi(pod, _ratio(false_alarms, false_alarms + correct_negatives)),
    }


def _window_sums(events: np.ndarray, window: int) -> np.ndarray:
    """Sums of `events` (..., ny, nx) over every window × window square wholly inside the field."""
    table = np.pad(events.cumsum(axis=-2).cumsum(axis=-1), [(0, 0)] * (events.ndim - 2) + [(1, 0), (1, 0)])
    return (
        table[..., window:, window:]
        - table[..., :-window, window:]
        - table[..., window:, :-window]
        + table[..., :-window, :-window]
    )


def fractions_sums(forecast: np.ndarray, observed: np.ndarray, threshold: float, window: int) -> np.ndarray:
    """FSS sums (Roberts & Lean, Mon. Wea. Rev. 136, 2008) of fields (..., ny, nx): (..., len(FRACTIONS))
    = Σ(Pf − Po)², ΣPf², ΣPo² over every window × window square wholly inside the field (no padding, as
    `scores.spatial.fss_2d`), P the fraction of its cells above `threshold`; a cell where either field is
    NaN is an event in neither. FSS = 1 − Σ(Pf − Po)² / (ΣPf² + ΣPo²) over any number of fields."""
    forecast, observed = np.asarray(forecast), np.asarray(observed)
    if min(forecast.shape[-2:]) < window:
        return np.zeros((*forecast.shape[:-2], len(FRACTIONS)))
    valid = np.isfinite(forecast) & np.isfinite(observed)
    area = float(window * window)
    p_f = _window_sums((valid & (forecast > threshold)).astype(np.float64), window) / area
    p_o = _window_sums((valid & (observed > threshold)).astype(np.float64), window) / area
    return np.stack([((p_f - p_o) ** 2).sum(axis=(-2, -1)), (p_f * p_f).sum(axis=(-2, -1)),
                     (p_o * p_o).sum(axis=(-2, -1))], axis=-1)  # fmt: skip


def fss(sums: np.ndarray) -> np.ndarray:
    """Fractions skill score from `fractions_sums` totals (..., len(FRACTIONS)); NaN where neither field had
    an event."""
    diff, ff, oo = np.moveaxis(np.asarray(sums, dtype=np.float64), -1, 0)
    return 1.0 - _ratio(diff, ff + oo)


def block_draws(runs: int, resamples: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, runs) run indices of a moving-block bootstrap (Künsch, Ann. Stat. 17, 1989): blocks of
    `block` consecutive runs from uniform starts, joined and cut to `runs`; block 1 is the plain bootstrap
    (the same draws as `rng.integers(0, runs, (resamples, runs))`)."""
    block = max(1, min(block, runs))
    starts = rng.integers(0, runs - block + 1, size=(resamples, -(-runs // block)))
    return (starts[..., None] + np.arange(block)).reshape(resamples, -1)[:, :runs]


def bootstrap_rmse_difference(
    sse: np.ndarray,
    n: np.ndarray,
    reference: int,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    block: int = 1,
) -> dict[str, np.ndarray]:
    """Paired bootstrap of RMSE differences to product `reference`, resampling whole runs (last axis, in
    time order) in moving blocks of `block` runs (forecasts of neighbouring runs overlap in valid time).

    `sse`, `n`: (P, R) sums of squared errors and pair counts per product and run; runs where any product
    has no pairs are dropped first (all NaN if none is left). One draw for all products (paired),
    `block_draws(R, resamples, block, np.random.default_rng(seed))` over the R kept runs. Returns (P,)
    arrays "rmse" and "difference" (point estimates on all kept runs), "ci_low", "ci_high" (percentile
    interval at `confidence`) and "p_value" (two-sided, of a zero difference: twice the smaller share of
    resampled differences on either side of 0, at most 1; NaN for the reference). With fewer than two
    distinct blocks (R ≤ `block`, or one run) every resample is the same: interval and p-value are NaN.
    """
    sse, n = np.asarray(sse, dtype=np.float64), np.asarray(n, dtype=np.float64)
    kept = (n > 0).all(axis=0)
    if not kept.any():
        return {
            key: np.full(len(sse), np.nan) for key in ("rmse", "difference", "ci_low", "ci_high", "p_value")
        }
    sse, n = sse[:, kept], n[:, kept]
    runs = sse.shape[1]
    rmse = np.sqrt(sse.sum(axis=1) / n.sum(axis=1))
    if runs - min(block, runs) + 1 < 2:
        nothing = np.full(len(sse), np.nan)
        return {"rmse": rmse, "difference": rmse - rmse[reference], "ci_low": nothing, "ci_high": nothing,
                "p_value": nothing}  # fmt: skip
    draws = block_draws(runs, resamples, block, np.random.default_rng(seed))
    # times[b, r]: how often run r is drawn in resample b
    rows = np.arange(resamples)[:, None] * runs
    times = np.bincount((rows + draws).ravel(), minlength=resamples * runs).reshape(resamples, runs)
    boot = np.sqrt((times @ sse.T) / (times @ n.T))  # (resamples, P)
    alpha = (1.0 - confidence) / 2
    differences = boot - boot[:, [reference]]
    ci_low, ci_high = np.quantile(differences, [alpha, 1.0 - alpha], axis=0)
    p_value = np.minimum(
        1.0, 2 * np.minimum((differences <= 0).mean(axis=0), (differences >= 0).mean(axis=0))
    )
    p_value[reference] = np.nan
    return {
        "rmse": rmse, "difference": rmse - rmse[reference], "ci_low": ci_low, "ci_high": ci_high,
        "p_value": p_value,
    }  # fmt: skip


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of p-values for multiple tests (Holm, Scand. J. Stat. 6, 1979): the k-th
    smallest of m becomes max over j ≤ k of (m − j + 1) p_(j), at most 1; NaN entries are left out."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = (len(order) - np.arange(len(order))) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def verdict(ci_low: float, ci_high: float) -> str:
    """Reading of an RMSE-difference interval: "better" (below 0), "worse" (above 0) or "not significant"."""
    if ci_high < 0:
        return "better"
    if ci_low > 0:
        return "worse"
    return "not significant"
