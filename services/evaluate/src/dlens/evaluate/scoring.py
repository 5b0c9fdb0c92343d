"""Scoring products against the analysis, one (run, species) per Ray task, one lead in memory at a time.

Each task returns additive sums only (metric statistics per product, lead, level and region;
exceedance counts; per-cell error sums for the maps), so the driver's memory is bounded by the
domain and the number of products, never by the length of the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlens.common.grid import Domain
from dlens.common.reader import StoreReader
from dlens.common.species import LEAD_BLOCKS, MEMBERS, SPECIES, lead_block
from dlens.evaluate.metrics import CONTINGENCY, STATISTICS, contingency_counts, sum_statistics
from dlens.evaluate.regions import regions_for

#: Map sums per product and cell at the first level: squared error, error, count.
MAP_SUMS = ("sse", "se", "n")


def mapped_products(products: Sequence[str]) -> list[str]:
    """The products that get maps: every one but the single members (tables show those)."""
    return [name for name in products if name not in MEMBERS]


@dataclass(frozen=True)
class Threshold:
    """An EU threshold: exceeded when the value (or its daily mean) is strictly above it."""

    name: str
    value: float
    averaging: str  # "1h" or "24h"


def thresholds(species: str) -> list[Threshold]:
    """The EU thresholds of a species (DESIGN §2)."""
    sp = SPECIES[species]
    out = [Threshold(sp.threshold_kind, sp.threshold_ugm3, sp.threshold_averaging)]
    if sp.alert_ugm3 is not None:
        out.append(Threshold("alert", sp.alert_ugm3, sp.threshold_averaging))
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


def score_unit(
    url: str, run: str, species: str, products: Sequence[str], domain: Domain, window: Window
) -> dict:
    """Sums for one run and species.

    `stats` (product, lead, level, region, statistic); `counts` (threshold, product, block, level,
    contingency); `maps` (mapped product, MAP_SUMS, lat, lon) at the first level.
    """
    reader = StoreReader(url)
    masks = regions_for(domain).masks  # built once per worker process
    t0 = np.datetime64(run, "h")
    leads, levels = reader.spec.leads, reader.spec.levels
    n_p, n_b = len(products), len(LEAD_BLOCKS)
    stats = np.zeros((n_p, len(leads), len(levels), len(masks), len(STATISTICS)))
    limits = thresholds(species)
    counts = np.zeros((len(limits), n_p, n_b, len(levels), len(CONTINGENCY)), dtype=np.int64)
    mapped = mapped_products(products)
    maps = np.zeros((len(mapped), len(MAP_SUMS), *masks.shape[1:]))
    # Daily means per lead block for 24-h thresholds: sums and counts of forecast and analysis.
    daily = any(t.averaging == "24h" for t in limits)
    shape = (n_b, len(levels), *masks.shape[1:])
    f_sum, f_n = np.zeros((n_p, *shape)), np.zeros((n_p, *shape))
    o_sum, o_n = np.zeros(shape), np.zeros(shape)
    blocks = list(LEAD_BLOCKS)
    for li, lead in enumerate(leads):
        truth = reader.analysis(species, t0 + np.timedelta64(lead, "h"))
        if truth is None:
            continue
        truth = truth[..., window.rows, window.cols]
        b = blocks.index(lead_block(lead))
        if daily:
            o_sum[b] += np.nan_to_num(truth)
            o_n[b] += np.isfinite(truth)
        for p, field in enumerate(_fields(reader, products, species, t0, lead, window)):
            if field is None:
                continue
            stats[p, li] = sum_statistics(field, truth, masks)
            for k, limit in enumerate(limits):
                if limit.averaging == "1h":
                    counts[k, p, b] += contingency_counts(field, truth, limit.value)[:, 0]
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
        for k, limit in enumerate(limits):
            if limit.averaging == "24h":
                counts[k] = contingency_counts(f_mean, np.broadcast_to(o_mean, f_mean.shape), limit.value)[
                    ..., 0, :
                ]
    return {"run": run, "species": species, "stats": stats, "counts": counts, "maps": maps.astype(np.float32)}
