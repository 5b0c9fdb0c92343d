"""Scoring a period: fan the (run, species) units out, sum their results, and build the tables.

The tables are flat records (one dict per product × species × level × lead or block × region ×
season) so that `metrics.json` holds every number in a form pandas reads directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from dlens.common.grid import Domain
from dlens.common.parallel import Unit, fan_out
from dlens.common.reader import StoreReader
from dlens.common.species import LEAD_BLOCKS, MEMBERS, lead_block
from dlens.evaluate.baselines import stored_name
from dlens.evaluate.metrics import (
    CONTINGENCY,
    FRACTIONS,
    METRICS,
    STATISTICS,
    bootstrap_rmse_difference,
    categorical_scores,
    fss,
    holm,
    scores_from_sums,
    verdict,
)
from dlens.evaluate.regions import Regions
from dlens.evaluate.scoring import FSS_WINDOW, MAP_SUMS, Window, mapped_products, score_unit, thresholds
from dlens.evaluate.stations import STATION_SETS, StationNetwork, StationSampler

SEASONS = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM",
           6: "JJA", 7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"}  # fmt: skip
ALL = "all"
#: The references every product's MSE skill score is computed against, where the plan scores them.
SKILL_REFERENCES: tuple[str, ...] = ("median", "persistence", "climatology")


def season_of(run: np.datetime64) -> str:
    """DJF, MAM, JJA or SON of a run's date."""
    return SEASONS[int(str(np.datetime64(run, "M"))[5:7])]


class EvaluationError(RuntimeError):
    """Scoring could not produce a report (every unit failed, or nothing was verifiable)."""


@dataclass(frozen=True)
class Plan:
    """What to score."""

    url: str
    runs: tuple[np.datetime64, ...]
    species: tuple[str, ...]
    products: tuple[str, ...]
    reference: str
    leads: tuple[int, ...]
    levels: tuple[int, ...]
    domain: Domain
    window: Window
    regions: Regions
    resamples: int
    seed: int = 0
    block_runs: int = 1
    #: Products that every other non-member product is also tested against, besides `reference`.
    comparisons: tuple[str, ...] = ()
    #: What every product is scored against (`layout.TARGETS`); the stations are scored as well.
    target: str = "analysis"

    @property
    def sources(self) -> tuple[str, ...]:
        """The products/ group of each product: the baselines that learn from the target, fitted on it."""
        return tuple(stored_name(name, self.target) for name in self.products)


@dataclass(frozen=True)
class Scores:
    """What scoring a period gives: the record tables of metrics.json and the maps dataset."""

    continuous: list[dict]
    exceedance: list[dict]
    mda8: list[dict]
    significance: list[dict]
    #: Scores at the stations of the observations group (empty when the store has none).
    stations: list[dict]
    #: The bootstrap of `significance` at the stations, per station set.
    station_significance: list[dict]
    maps: xr.Dataset


def score_period(plan: Plan) -> Scores:
    """Every table and the maps of the plan, from one Ray task per run and species."""
    n_r, n_s, n_p = len(plan.runs), len(plan.species), len(plan.products)
    n_v, n_k, n_b = len(plan.levels), len(plan.regions.names), len(LEAD_BLOCKS)
    stats = np.zeros((n_r, n_s, n_p, len(plan.leads), n_v, n_k, len(STATISTICS)))
    top = np.zeros_like(stats)
    mda8 = np.zeros((n_r, n_s, n_p, n_b, n_v, n_k, len(STATISTICS)))
    counts = {sp: np.zeros((n_r, len(thresholds(sp)), n_p, n_b, n_v, n_k, len(CONTINGENCY)), dtype=np.int64)
              for sp in plan.species}  # fmt: skip
    fractions = {
        sp: np.zeros((n_r, len(thresholds(sp)), n_p, n_b, n_v, len(FRACTIONS))) for sp in plan.species
    }
    maps = np.zeros((len(mapped_products(plan.products)), n_s, len(MAP_SUMS), *plan.regions.masks.shape[1:]))
    network = StationNetwork.read(StoreReader(plan.url))
    sampler = None if network is None else StationSampler.for_domain(network, plan.domain)
    at_stations = np.zeros((n_r, n_s, n_p, n_b, len(STATION_SETS), len(STATISTICS)))
    n_st = 0 if sampler is None else len(sampler)
    station_errors = np.zeros((len(mapped_products(plan.products)), n_s, n_st, len(MAP_SUMS)))
    run_index = {str(r): i for i, r in enumerate(plan.runs)}

    def add(result: dict) -> None:
        r, s = run_index[result["run"]], plan.species.index(result["species"])
        stats[r, s], top[r, s] = result["stats"], result["top"]
        mda8[r, s] = result["mda8"]
        counts[result["species"]][r] = result["counts"]
        fractions[result["species"]][r] = result["fractions"]
        maps[:, s] += result["maps"]
        at_stations[r, s] = result["stations"]
        station_errors[:, s] += result["station_errors"]

    units = [
        Unit(f"score {np.datetime64(run, 'D')} {sp}", score_unit,
             (plan.url, str(run), sp, plan.products, plan.domain, plan.window, plan.target, plan.sources))
        for run in plan.runs for sp in plan.species
    ]  # fmt: skip
    report = fan_out(units, add, desc="scoring")
    if report.failed:
        raise EvaluationError(f"{len(report.failed)} scoring units failed; first: {report.failed[0]}")
    if stats[..., STATISTICS.index("n")].sum() == 0:
        raise EvaluationError(f"no product field could be paired with the {plan.target} in the period")
    return Scores(
        continuous=_continuous(plan, np.stack([stats, top], axis=-2)),
        exceedance=_exceedance(plan, counts, fractions),
        mda8=_mda8(plan, mda8),
        significance=_significance(plan, stats),
        stations=_stations(plan, at_stations.sum(axis=0), sampler),
        station_significance=[] if sampler is None else _station_significance(plan, at_stations),
        maps=_with_station_maps(_maps(plan, maps), plan, station_errors, network, sampler),
    )


def _blocks(plan: Plan) -> dict[str, np.ndarray]:
    """Boolean lead selections per block present, and 'all'."""
    names = np.array([lead_block(lead) for lead in plan.leads])
    out = {b: names == b for b in LEAD_BLOCKS if (names == b).any()}
    out[ALL] = np.ones(len(plan.leads), dtype=bool)
    return out


def _record(base: dict, sums: np.ndarray) -> dict:
    """`base` with the scores of `sums` (2, statistic): every pair, then the pairs of the top 5 %."""
    scores = scores_from_sums(sums[0])
    top = {"rmse_top5": METRICS["rmse"](sums[1]), "bias_top5": METRICS["bias"](sums[1])}
    return {**base, **{k: _number(v) for k, v in (scores | top).items()}}


def _continuous(plan: Plan, stats: np.ndarray) -> list[dict]:
    """Records per lead (domain), per block (every region) and per season (all leads, domain), from
    `stats` (run, species, product, lead, level, region, 2, statistic): all pairs and the top 5 %."""
    records = []
    seasons = np.array([season_of(r) for r in plan.runs])
    by_run = stats.sum(axis=0)  # (species, product, lead, level, region, stat)
    for s, sp in enumerate(plan.species):
        for p, product in enumerate(plan.products):
            for v, level in enumerate(plan.levels):
                base = {"product": product, "species": sp, "level": level}
                for li, lead in enumerate(plan.leads):
                    where = {"lead": lead, "lead_block": lead_block(lead), "region": "domain", "season": ALL}
                    records.append(_record(
                        {**base, **where},
                        by_run[s, p, li, v, 0],
                    ))  # fmt: skip
                for block, sel in _blocks(plan).items():
                    for k, region in enumerate(plan.regions.names):
                        records.append(_record(
                            {**base, "lead": None, "lead_block": block, "region": region, "season": ALL},
                            by_run[s, p, sel, v, k].sum(axis=0),
                        ))  # fmt: skip
                for season in dict.fromkeys(seasons):
                    records.append(_record(
                        {**base, "lead": None, "lead_block": ALL, "region": "domain", "season": str(season)},
                        stats[seasons == season, s, p, :, v, 0].sum(axis=(0, 1)),
                    ))  # fmt: skip
    return _with_skill_scores(records, plan.products)


def _with_skill_scores(records: list[dict], products: tuple[str, ...]) -> list[dict]:
    """Add `skill_<ref>` = 1 − MSE / MSE_ref to each record, against every reference of SKILL_REFERENCES
    the plan scores, over the same species, level, lead, block, region and season (None where undefined)."""
    key = ("species", "level", "lead", "lead_block", "region", "season")
    references = [ref for ref in SKILL_REFERENCES if ref in products]
    rmse = {(r["product"], *(r[k] for k in key)): r["rmse"] for r in records}
    for record in records:
        for ref in references:
            own, theirs = record["rmse"], rmse.get((ref, *(record[k] for k in key)))
            defined = own is not None and theirs is not None and theirs > 0
            record[f"skill_{ref}"] = 1.0 - (own / theirs) ** 2 if defined else None
    return records


def _exceedance(plan: Plan, counts: dict[str, np.ndarray], fractions: dict[str, np.ndarray]) -> list[dict]:
    """Contingency scores and FSS per species, threshold, product and level: per lead block and region (all
    seasons), and per season (all leads, whole domain), from `counts` (run, threshold, product, block, level,
    region, contingency) and `fractions` (run, threshold, product, block, level, FRACTIONS), the FSS over the
    whole domain only (its windows span regions)."""
    records = []
    seasons = np.array([season_of(r) for r in plan.runs])
    domain = plan.regions.names.index("domain")
    for sp in plan.species:
        for k, limit in enumerate(thresholds(sp)):
            for p, product in enumerate(plan.products):
                for v, level in enumerate(plan.levels):
                    by_run, fss_run = counts[sp][:, k, p, :, v], fractions[sp][:, k, p, :, v]
                    if by_run.sum() == 0:  # no pair at all (an MDA8 of leads that are not hourly)
                        continue
                    base = {"product": product, "species": sp, "level": level, "threshold_name": limit.name,
                            "threshold": limit.value, "averaging": limit.averaging}  # fmt: skip
                    per_block = {b: (by_run[:, i].sum(axis=0), fss_run[:, i].sum(axis=0))
                                 for i, b in enumerate(LEAD_BLOCKS)}  # fmt: skip
                    per_block[ALL] = (by_run.sum(axis=(0, 1)), fss_run.sum(axis=(0, 1)))
                    for block, (c, f) in per_block.items():
                        for g, region in enumerate(plan.regions.names):
                            where = {"lead_block": block, "region": region, "season": ALL}
                            records += _contingency_record(
                                {**base, **where}, c[g], f if g == domain else None
                            )
                    for season in dict.fromkeys(seasons):
                        chosen = seasons == season
                        c, f = by_run[chosen].sum(axis=(0, 1))[domain], fss_run[chosen].sum(axis=(0, 1))
                        where = {"lead_block": ALL, "region": "domain", "season": str(season)}
                        records += _contingency_record({**base, **where}, c, f)
    return records


def _contingency_record(base: dict, counts: np.ndarray, fractions: np.ndarray | None) -> list[dict]:
    """[the exceedance record of `base`: the counts, POD, FAR, CSI, SEDI and (given its sums) the FSS], or
    [] where `counts` hold no pair."""
    if counts.sum() == 0:
        return []
    return [{
        **base, **{name: int(counts[i]) for i, name in enumerate(CONTINGENCY)},
        **{name: _number(value) for name, value in categorical_scores(counts).items()},
        "fss": None if fractions is None else _number(fss(fractions)), "fss_window": FSS_WINDOW,
    }]  # fmt: skip


def _mda8(plan: Plan, sums: np.ndarray) -> list[dict]:
    """MDA8 records per species with an MDA8 target (O3), product and level: per block (forecast day) and
    region (all seasons), and per season (all days, whole domain), from `sums` (run, species, product,
    block, level, region, statistic); none where no day was complete."""
    records = []
    seasons = np.array([season_of(r) for r in plan.runs])
    domain = plan.regions.names.index("domain")
    for s, sp in enumerate(plan.species):
        for p, product in enumerate(plan.products):
            for v, level in enumerate(plan.levels):
                base = {"product": product, "species": sp, "level": level}
                by_run = sums[:, s, p, :, v]  # (run, block, region, statistic)
                per_block = {b: by_run[:, i].sum(axis=0) for i, b in enumerate(LEAD_BLOCKS)}
                per_block[ALL] = by_run.sum(axis=(0, 1))
                for block, by_region in per_block.items():
                    for k, region in enumerate(plan.regions.names):
                        where = {"lead_block": block, "region": region, "season": ALL}
                        records += _scored({**base, **where}, by_region[k])
                for season in dict.fromkeys(seasons):
                    where = {"lead_block": ALL, "region": "domain", "season": str(season)}
                    records += _scored({**base, **where}, by_run[seasons == season].sum(axis=(0, 1))[domain])
    return records


def _scored(base: dict, sums: np.ndarray) -> list[dict]:
    """[the record of `base` with the scores of `sums`], or [] where `sums` hold no pair."""
    if sums[STATISTICS.index("n")] == 0:
        return []
    return [{**base, **{key: _number(value) for key, value in scores_from_sums(sums).items()}}]


def _pairs(plan: Plan) -> list[tuple[int, int]]:
    """(reference, product) indices of the bootstrap: every product against the reference, and every
    non-member product against each product of `plan.comparisons`."""
    names = [(plan.reference, product) for product in plan.products if product != plan.reference]
    names += [(reference, product) for reference in plan.comparisons for product in plan.products
              if product not in (reference, plan.reference) and product not in MEMBERS]  # fmt: skip
    return [(plan.products.index(reference), plan.products.index(product)) for reference, product in names]


def _paired_records(plan: Plan, sse: np.ndarray, n: np.ndarray, base: dict) -> list[dict]:
    """The bootstrap records of every pair of `_pairs` from (product, run) sums; `base` keys first."""
    sse = np.maximum(sse, 0.0)
    records = []
    for ref, p in _pairs(plan):
        if n[ref].sum() == 0 or n[p].sum() == 0:
            continue
        # One pair at a time: a run is dropped only where this product or the reference lacks it.
        pair = bootstrap_rmse_difference(
            sse[[ref, p]], n[[ref, p]], 0, plan.resamples, seed=plan.seed, block=plan.block_runs
        )
        low, high = float(pair["ci_low"][1]), float(pair["ci_high"][1])
        records.append({
            "product": plan.products[p], **base, "reference": plan.products[ref],
            "rmse": _number(pair["rmse"][1]), "rmse_reference": _number(pair["rmse"][0]),
            "difference": _number(pair["difference"][1]),
            "ci_low": _number(low), "ci_high": _number(high), "verdict": verdict(low, high),
            "p_value": _number(pair["p_value"][1]),
        })  # fmt: skip
    return records


def _with_holm(records: list[dict], family: tuple[str, ...]) -> list[dict]:
    """`records` with `p_holm`: the p-values Holm-adjusted within each family of equal `family` keys, over
    its lead-block rows (not the 'all' rows, which repeat them)."""
    families: dict[tuple, list[dict]] = {}
    for r in records:
        if r["lead_block"] != ALL:
            families.setdefault(tuple(r[k] for k in family), []).append(r)
    for rows in families.values():
        adjusted = holm(np.array([np.nan if r["p_value"] is None else r["p_value"] for r in rows]))
        for row, value in zip(rows, adjusted):
            row["p_holm"] = _number(value)
    return records


def _sse_and_n(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sum of squared errors and the pair count of `sums` (..., STATISTICS)."""
    ff, fo, oo, n = (sums[..., STATISTICS.index(name)] for name in ("ff", "fo", "oo", "n"))
    return ff - 2 * fo + oo, n


def _significance(plan: Plan, stats: np.ndarray) -> list[dict]:
    """Paired moving-block bootstrap over runs of the RMSE difference of each product to the reference, and of
    each non-member product to every product of `plan.comparisons`; the p-values of one product against one
    reference Holm-adjusted over its species × level × lead-block rows (`p_holm`)."""
    sse_all, n_all = _sse_and_n(stats[..., 0, :])  # (run, species, product, lead, level)
    records = []
    for s, sp in enumerate(plan.species):
        for v, level in enumerate(plan.levels):
            for block, sel in _blocks(plan).items():
                sse = sse_all[:, s][:, :, sel, v].sum(axis=2).T  # (product, run)
                n = n_all[:, s][:, :, sel, v].sum(axis=2).T
                base = {"species": sp, "level": level, "lead_block": block}
                records += _paired_records(plan, sse, n, base)
    return _with_holm(records, ("product", "reference"))


def _station_significance(plan: Plan, sums: np.ndarray) -> list[dict]:
    """The bootstrap of `_significance` at the stations: per species, lead block and station set (first
    level), from `sums` (run, species, product, block, STATION_SETS, statistic); p-values Holm-adjusted
    per product, reference and station set over species × lead block."""
    sse_all, n_all = _sse_and_n(sums)  # (run, species, product, block, set)
    records = []
    for s, sp in enumerate(plan.species):
        per_block = {b: (sse_all[:, s, :, i], n_all[:, s, :, i]) for i, b in enumerate(LEAD_BLOCKS)}
        per_block[ALL] = (sse_all[:, s].sum(axis=2), n_all[:, s].sum(axis=2))
        for block, (sse, n) in per_block.items():  # (run, product, set)
            for k, name in enumerate(STATION_SETS):
                base = {"species": sp, "level": plan.levels[0], "lead_block": block, "stations": name}
                records += _paired_records(plan, sse[..., k].T, n[..., k].T, base)
    return _with_holm(records, ("product", "reference", "stations"))


def _maps(plan: Plan, maps: np.ndarray) -> xr.Dataset:
    sse, se, n = (maps[:, :, MAP_SUMS.index(k)] for k in MAP_SUMS)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.where(n > 0, np.sqrt(sse / n), np.nan).astype(np.float32)
        bias = np.where(n > 0, se / n, np.nan).astype(np.float32)
    dims = ("product", "species", "latitude", "longitude")
    coords = {
        "product": mapped_products(plan.products), "species": list(plan.species),
        "latitude": plan.domain.latitude, "longitude": plan.domain.longitude,
    }  # fmt: skip
    return xr.Dataset(
        {"rmse": (dims, rmse, {"units": "µg/m3"}), "bias": (dims, bias, {"units": "µg/m3"})},
        coords=coords,
        attrs={"reference": plan.reference, "level": int(plan.levels[0])},
    )


def _stations(plan: Plan, sums: np.ndarray, sampler: StationSampler | None) -> list[dict]:
    """Records per species, product, lead block and station set (first level), from `sums` (species,
    product, block, STATION_SETS, statistic); none for a set without a pair, or without stations."""
    if sampler is None:
        return []
    counts = sampler.masks.sum(axis=1)
    records = []
    for s, sp in enumerate(plan.species):
        for p, product in enumerate(plan.products):
            per_block = {b: sums[s, p, i] for i, b in enumerate(LEAD_BLOCKS)}
            per_block[ALL] = sums[s, p].sum(axis=0)
            for block, by_set in per_block.items():
                for k, name in enumerate(STATION_SETS):
                    base = {"product": product, "species": sp, "level": plan.levels[0], "lead_block": block,
                            "stations": name, "station_count": int(counts[k])}  # fmt: skip
                    records += _scored(base, by_set[k])
    return records


def _with_station_maps(
    maps: xr.Dataset,
    plan: Plan,
    errors: np.ndarray,
    network: StationNetwork | None,
    sampler: StationSampler | None,
) -> xr.Dataset:
    """`maps` with each mapped product's RMSE and bias at every station of the domain (all leads), from
    `errors` (mapped product, species, station, MAP_SUMS); unchanged when the store has no stations."""
    if network is None or sampler is None or not len(sampler):
        return maps
    sse, se, n = (errors[..., MAP_SUMS.index(k)] for k in MAP_SUMS)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.where(n > 0, np.sqrt(sse / n), np.nan).astype(np.float32)
        bias = np.where(n > 0, se / n, np.nan).astype(np.float32)
    i = sampler.index
    dims = ("product", "species", "station")
    station_coords = {
        "station_code": ("station", network.code[i]), "station_type": ("station", network.kind[i]),
        "station_latitude": ("station", network.latitude[i]),
        "station_longitude": ("station", network.longitude[i]), "withheld": ("station", network.withheld[i]),
    }  # fmt: skip
    return maps.assign(
        station_rmse=(dims, rmse, {"units": "µg/m3"}), station_bias=(dims, bias, {"units": "µg/m3"})
    ).assign_coords(station_coords)


def _number(value) -> float | None:
    """A JSON-ready float: None for NaN or inf."""
    value = float(value)
    return value if np.isfinite(value) else None
