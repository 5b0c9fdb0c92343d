"""Scoring products against a target (the analysis, or a reanalysis), one (run, species) per Ray task, one
lead in memory at a time.

Each task returns additive sums only (metric statistics per product, lead, level and region, over all
pairs and over the run's top 5 % of analysed values; O3 MDA8 statistics; exceedance counts and fractions
skill score sums; per-cell error sums for the maps; sums at the stations), so the driver's memory is
bounded by the domain and the number of products, never by the length of the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlens.common.grid import Domain
from dlens.common.reader import StoreReader
from dlens.common.species import LEAD_BLOCKS, MEMBERS, SPECIES, lead_block
from dlens.evaluate.daily import RunningMda8
from dlens.evaluate.metrics import (
    CONTINGENCY,
    FRACTIONS,
    STATISTICS,
    contingency_counts,
    fractions_sums,
    sum_statistics,
)
from dlens.evaluate.regions import regions_for
from dlens.evaluate.stations import (
    STATION_SETS,
    StationNetwork,
    StationSampler,
    per_station_sums,
    station_sums,
)

#: Map sums per product and cell at the first level: squared error, error, count.
MAP_SUMS = ("sse", "se", "n")
#: The analysed values whose errors `rmse_top5` measures: at or above this percentile of the analysis
#: over the run's verification window (all its leads and cells, per level).
TOP_PERCENTILE = 95.0
#: Side of the fractions skill score's square neighbourhood, in cells (0.5° on the 0.1° CAMS grid).
FSS_WINDOW = 5


def mapped_products(products: Sequence[str]) -> list[str]:
    """The products that get maps: every one but the single members (tables show those)."""
    return [name for name in products if name not in MEMBERS]


@dataclass(frozen=True)
class Threshold:
    """An EU threshold: exceeded when the value (or its daily mean) is strictly above it."""

    name: str
    value: float
    averaging: str  # "1h", "24h" (the daily mean) or "mda8" (the maximum daily 8-hour mean)


def thresholds(species: str) -> list[Threshold]:
    """The EU thresholds of a species (DESIGN §2), its MDA8 target value included."""
    sp = SPECIES[species]
    out = [Threshold(sp.threshold_kind, sp.threshold_ugm3, sp.threshold_averaging)]
    if sp.alert_ugm3 is not None:
        out.append(Threshold("alert", sp.alert_ugm3, sp.threshold_averaging))
    if sp.mda8_target_ugm3 is not None:
        out.append(Threshold("target", sp.mda8_target_ugm3, "mda8"))
    return out


@dataclass(frozen=True)
class Window:
    """Rows and columns of the store's grid that are evaluated (a crop, or everything)."""

    rows: slice
    cols: slice


def _fields(
    reader: StoreReader, names: Sequence[str], species: str, run: np.datetime64, lead: int, window: Window
) -> list[np.ndarray | None]:
    """(level, lat, lon) of each product at one lead; members are read once for all member names."""
    members = None
    out: list[np.ndarray | None] = []
    for name in names:
        if name in MEMBERS:
            if members is None:
                members = reader.members(species, run, lead)
            field = members[MEMBERS.index(name)]
        else:
            field = reader.product(name, species, run, lead)
        out.append(None if field is None else field[..., window.rows, window.cols])
    return out


def _top_values(truths: Sequence[np.ndarray]) -> np.ndarray:
    """(level, 1, 1) TOP_PERCENTILE of the analysed values of a run's window (NaN where there are none)."""
    if not truths:
        return np.array(np.nan)
    stack = np.stack(truths)  # (lead, level, lat, lon)
    finite = np.isfinite(stack).any(axis=(0, 2, 3))
    top = np.full(stack.shape[1], np.nan)
    for v in np.flatnonzero(finite):
        top[v] = np.nanpercentile(stack[:, v], TOP_PERCENTILE)
    return top[:, None, None]


def score_unit(
    url: str,
    run: str,
    species: str,
    products: Sequence[str],
    domain: Domain,
    window: Window,
    target: str = "analysis",
    sources: Sequence[str] | None = None,
) -> dict:
    """Sums for one run and species, against `target` (the analysis or a reanalysis: "analysis" below); the
    stations are their own truth, scored at the leads the target verifies. `sources`: the products/ group
    each product is read from (default: its name; a baseline fitted on a reanalysis has its own).

    `stats` and `top` (product, lead, level, region, statistic): every pair, and the pairs whose analysis
    is in the run's top 5 %; `mda8` (product, block, level, region, statistic) of the maximum daily
    8-hour means, forecast day d in block d (zeros for a species without an MDA8 target); `counts`
    (threshold, product, block, level, region, contingency) and `fractions` (threshold, product, block,
    level, FRACTIONS) over the whole field; `maps` (mapped product, MAP_SUMS, lat, lon) at the first
    level; at the stations of the domain, first level: `stations` (product, block, STATION_SETS,
    statistic) and `station_errors` (mapped product, station, MAP_SUMS), both empty when the store holds
    no observations.
    """
    reader = StoreReader(url)
    network = StationNetwork.read(reader)
    sampler = None if network is None else StationSampler.for_domain(network, domain)
    masks = regions_for(domain).masks  # built once per worker process
    t0 = np.datetime64(run, "h")
    leads, levels = reader.spec.leads, reader.spec.levels
    n_p, n_b = len(products), len(LEAD_BLOCKS)
    stats = np.zeros((n_p, len(leads), len(levels), len(masks), len(STATISTICS)))
    top = np.zeros_like(stats)
    limits = thresholds(species)
    counts = np.zeros((len(limits), n_p, n_b, len(levels), len(masks), len(CONTINGENCY)), dtype=np.int64)
    fractions = np.zeros((len(limits), n_p, n_b, len(levels), len(FRACTIONS)))
    mapped = mapped_products(products)
    maps = np.zeros((len(mapped), len(MAP_SUMS), *masks.shape[1:]))
    n_st = 0 if sampler is None else len(sampler)
    at_stations = np.zeros((n_p, n_b, len(STATION_SETS), len(STATISTICS)))
    station_errors = np.zeros((len(mapped), n_st, len(MAP_SUMS)))
    # Daily means per lead block for 24-h thresholds: sums and counts of forecast and analysis.
    daily = any(t.averaging == "24h" for t in limits)
    mda8 = RunningMda8(days=n_b) if any(t.averaging == "mda8" for t in limits) else None
    shape = (n_b, len(levels), *masks.shape[1:])
    f_sum, f_n = np.zeros((n_p, *shape)), np.zeros((n_p, *shape))
    o_sum, o_n = np.zeros(shape), np.zeros(shape)
    blocks = list(LEAD_BLOCKS)
    truths = {}
    for lead in leads:
        truth = reader.analysis(species, t0 + np.timedelta64(lead, "h"), target=target)
        if truth is not None:
            truths[lead] = truth[..., window.rows, window.cols]
    top_value = _top_values(list(truths.values()))
    for li, lead in enumerate(leads):
        if lead not in truths:
            continue
        truth = truths[lead]
        b = blocks.index(lead_block(lead))
        if daily:
            o_sum[b] += np.nan_to_num(truth)
            o_n[b] += np.isfinite(truth)
        fields = _fields(reader, sources or products, species, t0, lead, window)
        observed = None if not n_st else reader.observations(species, t0 + np.timedelta64(lead, "h"))
        if observed is not None:
            observed = sampler.observed(observed)
        if mda8 is not None:
            missing = np.full(truth.shape, np.nan)
            mda8.add(lead, np.stack([missing if f is None else f for f in fields] + [truth]))
        for p, field in enumerate(fields):
            if field is None:
                continue
            stats[p, li] = sum_statistics(field, truth, masks)
            top[p, li] = sum_statistics(np.where(truth >= top_value, field, np.nan), truth, masks)
            for k, limit in enumerate(limits):
                if limit.averaging == "1h":
                    counts[k, p, b] += contingency_counts(field, truth, limit.value, masks)
                    fractions[k, p, b] += fractions_sums(field, truth, limit.value, FSS_WINDOW)
            if observed is not None:
                sampled = sampler.sample(field[0])
                at_stations[p, b] += station_sums(sampled, observed, sampler.masks)
                if products[p] in mapped:
                    station_errors[mapped.index(products[p])] += per_station_sums(sampled, observed)
            if products[p] in mapped:
                err = field[0] - truth[0]
                ok = np.isfinite(err)
                maps[mapped.index(products[p])] += np.stack(
                    [np.where(ok, err * err, 0.0), np.where(ok, err, 0.0), ok]
                )
            if daily:
                f_sum[p, b] += np.nan_to_num(field)
                f_n[p, b] += np.isfinite(field)
    if daily:
        with np.errstate(invalid="ignore", divide="ignore"):
            o_mean = np.where(o_n > 0, o_sum / o_n, np.nan)
            f_mean = np.where(f_n > 0, f_sum / f_n, np.nan)
        _add_daily(limits, "24h", f_mean, np.broadcast_to(o_mean, f_mean.shape), masks, counts, fractions)
    mda8_stats = np.zeros((n_p, n_b, len(levels), len(masks), len(STATISTICS)))
    daily_max = None if mda8 is None else mda8.result()
    if daily_max is not None:  # (block, product + analysis, level, lat, lon)
        f_max = np.moveaxis(daily_max[:, :n_p], 0, 1)
        o_max = np.broadcast_to(daily_max[:, n_p], f_max.shape)
        mda8_stats = sum_statistics(f_max, o_max, masks)
        _add_daily(limits, "mda8", f_max, o_max, masks, counts, fractions)
    return {
        "run": run, "species": species, "stats": stats, "top": top, "mda8": mda8_stats, "counts": counts,
        "fractions": fractions, "maps": maps.astype(np.float32), "stations": at_stations,
        "station_errors": station_errors,
    }  # fmt: skip


def _add_daily(
    limits: Sequence[Threshold],
    averaging: str,
    forecast: np.ndarray,
    observed: np.ndarray,
    masks: np.ndarray,
    counts: np.ndarray,
    fractions: np.ndarray,
) -> None:
    """Counts per region and FSS sums of daily fields (product, block, level, lat, lon) at the thresholds
    of `averaging`."""
    for k, limit in enumerate(limits):
        if limit.averaging == averaging:
            counts[k] = contingency_counts(forecast, observed, limit.value, masks)
            fractions[k] = fractions_sums(forecast, observed, limit.value, FSS_WINDOW)
