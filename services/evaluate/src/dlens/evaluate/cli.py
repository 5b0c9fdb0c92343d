"""`dlens-evaluate`: compute the missing baselines, score every product, write the report.

Exit status: 0 report written; 2 bad arguments or an unusable store (one line, nothing written);
1 scoring failed (nothing written either: the report appears whole or not at all).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import shutil
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from dlens.common.config import cli_settings, get_settings
from dlens.common.grid import Domain, parse_domain
from dlens.common.layout import TARGETS
from dlens.common.lock import StoreLockedError, invocation, store_lock
from dlens.common.logging import get_logger
from dlens.common.reader import StoreReader
from dlens.common.schema import validate_store
from dlens.common.species import MEMBERS, SPECIES_NAMES, lead_block, parse_species
from dlens.common.store import error_line, put_directory
from dlens.common.version import code_version
from dlens.evaluate.baselines import BASELINES, ensure_baselines
from dlens.evaluate.evaluation import EvaluationError, Plan, score_period, season_of
from dlens.evaluate.regions import regions_for
from dlens.evaluate.report import write_report
from dlens.evaluate.scoring import Window
from dlens.evaluate.stations import STATION_SETS

log = get_logger(__name__)
REFERENCE = "median"
DEFAULT_PRODUCTS = "median,mean,weighted,best-member"
#: How the report's title names each target.
TARGET_TITLES = {"analysis": "analysis", "interim": "interim reanalysis", "validated": "validated reanalysis"}


class UsageError(ValueError):
    """A bad argument or an unusable store: reported in one line, nothing written."""


def build_parser() -> argparse.ArgumentParser:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="dlens-evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--store", help="local path or s3://bucket/prefix (default: DLENS_STORE)")
    parser.add_argument("--start", required=True, type=_day, help="first run, YYYY-MM-DD")
    parser.add_argument("--days", required=True, type=int, help="number of daily runs")
    parser.add_argument(
        "--products",
        default=DEFAULT_PRODUCTS,
        help="comma list: baselines (median, mean, weighted, weighted-regions, best-member, median-early; "
        "the learned mos and emos; the references persistence and climatology), any products/<name> in the "
        "store (e.g. dlens-<model id>, cams-ensemble) or a pattern of them (dlens-* for every model's), "
        "member names, or 'members' for all 11; the median is always scored as the reference "
        f"(default: {DEFAULT_PRODUCTS})",
    )
    parser.add_argument(
        "--compare-to", default="",
        help="comma list of scored products that every other non-member product is also tested against "
        "(bootstrap rows with that `reference`, e.g. mos,emos for the strongest baseline); the median "
        "always is",
    )  # fmt: skip
    parser.add_argument(
        "--target", default="analysis", choices=list(TARGETS),
        help="what every product is scored against: the CAMS analysis, the interim or the validated "
        "reanalysis (store groups analysis, reanalysis/interim, reanalysis/validated); the baselines that "
        "learn from it (weighted, best-member, mos, emos, persistence, climatology) are fitted on it; the "
        "stations are scored too (default: analysis)",
    )  # fmt: skip
    parser.add_argument("--species", default=",".join(SPECIES_NAMES), help="comma list (default: all four)")
    parser.add_argument("--domain", help="evaluate a crop of the store's domain (named or S,N,W,E)")
    parser.add_argument("--out", required=True, type=Path, help="report directory (index.html, metrics.json)")
    parser.add_argument(
        "--weight-days", type=int, default=settings.weight_window_days,
        help=f"trailing window of the weighted ENSEMBLE, days (default: {settings.weight_window_days})",
    )  # fmt: skip
    parser.add_argument(
        "--resamples", type=int, default=settings.bootstrap_resamples,
        help=f"bootstrap resamples (default: {settings.bootstrap_resamples})",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.invocation = invocation("dlens-evaluate", argv)  # the owner a store lock names
    settings = cli_settings(args.log_level, args.no_progress)
    store = args.store or settings.store
    try:
        plan = make_plan(args, store)
        index = run(plan, args)
    except (UsageError, StoreLockedError) as exc:  # bad input, another writer at work
        print(f"dlens-evaluate: error: {exc}", file=sys.stderr)
        return 2
    except (EvaluationError, OSError, BotoCoreError, ClientError) as exc:
        print(f"dlens-evaluate: error: {error_line(exc)}", file=sys.stderr)
        return 1
    print(f"report: {index}")
    return 0


def make_plan(args: argparse.Namespace, store: str) -> Plan:
    """Check the arguments against the store and say what to score; UsageError on anything wrong."""
    if args.days < 1:
        raise UsageError(f"--days {args.days}: expected at least 1")
    if args.resamples < 100:
        raise UsageError(f"--resamples {args.resamples}: expected at least 100")
    if args.weight_days < 1:
        raise UsageError(f"--weight-days {args.weight_days}: expected at least 1")
    try:
        species = tuple(parse_species(args.species))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    problems = validate_store(store)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"store {store!r} fails validation: {problems[0]}{more}")
    reader = StoreReader(store)
    products = _products(args.products, reader)
    comparisons = tuple(dict.fromkeys(n.strip().lower() for n in args.compare_to.split(",") if n.strip()))
    unscored = [name for name in comparisons if name not in products or name in MEMBERS]
    if unscored:
        raise UsageError(f"--compare-to {','.join(unscored)}: not among the non-member --products scored")
    first = np.datetime64(args.start, "h")
    last = first + np.timedelta64(24 * args.days, "h")
    runs = tuple(r for sp in species for r in reader.complete_runs(sp) if first <= r < last)
    runs = tuple(sorted(set(runs)))
    if not runs:
        raise UsageError(
            f"no forecast run of {','.join(species)} from {args.start} to "
            f"{args.start + timedelta(days=args.days - 1)} in store {store!r}"
        )
    if not any(
        reader.analysis_complete(sp, r + np.timedelta64(lead, "h"), target=args.target)
        for r in runs for sp in species for lead in reader.spec.leads
    ):  # fmt: skip
        raise UsageError(
            f"no {args.target} (group {TARGETS[args.target]}) in store {store!r} for any valid time of the "
            f"{len(runs)} runs asked for"
        )
    domain, window = _crop(reader.spec.domain, args.domain)
    return Plan(
        url=store, runs=runs, species=species, products=products, reference=REFERENCE,
        leads=reader.spec.leads, levels=reader.spec.levels, domain=domain, window=window,
        regions=regions_for(domain), resamples=args.resamples, block_runs=get_settings().bootstrap_block_runs,
        comparisons=tuple(c for c in comparisons if c != REFERENCE), target=args.target,
    )  # fmt: skip


def run(plan: Plan, args: argparse.Namespace) -> Path:
    """Baselines, scores, report; the report directory is replaced only once it is complete."""
    baselines = [p for p in plan.products if p in BASELINES]
    # the baselines go to products/: one writer at a time (none to compute: nothing written, no lock)
    with store_lock(plan.url, args.invocation) if baselines else contextlib.nullcontext():
        done = ensure_baselines(plan.url, plan.runs, baselines, args.weight_days, target=plan.target)
    if done.failed:
        raise EvaluationError(f"{len(done.failed)} baseline units failed; first: {done.failed[0]}")
    for name, count in done.computed.items():
        log.info("baseline %s: %d runs computed and stored", name, count)
    scored = score_period(plan)
    created = datetime.now(UTC)
    metrics = {
        "meta": _meta(plan, args, created),
        "continuous": scored.continuous,
        "exceedance": scored.exceedance,
        "mda8": scored.mda8,
        "stations": scored.stations,
        "significance": scored.significance,
        "station_significance": scored.station_significance,
    }
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_report(metrics, scored.maps, staging, progress=get_settings().progress)
        report_id = f"{plan.runs[0].astype('datetime64[D]')}_{len(plan.runs)}runs_{created:%Y%m%dT%H%M%SZ}"
        stored = put_directory(staging, plan.url, f"reports/{report_id}")
        log.info("report copied to %s", stored)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "index.html"


def _products(text: str, reader: StoreReader) -> tuple[str, ...]:
    names: list[str] = [REFERENCE]
    stored = set(reader.root["products"].group_keys()) if reader.has("products") else set()
    for name in (n.strip().lower() for n in text.split(",") if n.strip()):
        expanded = list(MEMBERS) if name == "members" else [name]
        if any(c in name for c in "*?["):
            expanded = sorted(fnmatch.filter(stored, name))
            if not expanded:
                raise UsageError(f"no product in the store matches {name!r}")
        for item in expanded:
            if item not in BASELINES and item not in MEMBERS and item not in stored:
                known = ", ".join([*BASELINES, *sorted(stored - set(BASELINES)), "members", "<member name>"])
                raise UsageError(f"unknown product {item!r}; known: {known}")
            if item not in names:
                names.append(item)
    return tuple(names)


def _crop(store_domain: Domain, text: str | None) -> tuple[Domain, Window]:
    if not text:
        return store_domain, Window(slice(None), slice(None))
    try:
        crop = parse_domain(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    d = store_domain
    if not (d.i0 <= crop.i0 and crop.i1 <= d.i1 and d.j0 <= crop.j0 and crop.j1 <= d.j1):
        raise UsageError(f"domain {crop.spec()} is not inside the store's domain {d.spec()}")
    return crop, Window(slice(crop.i0 - d.i0, crop.i1 - d.i0), slice(crop.j0 - d.j0, crop.j1 - d.j0))


def _meta(plan: Plan, args: argparse.Namespace, created: datetime) -> dict:
    return {
        "title": f"DL-ENS verification against the {TARGET_TITLES[plan.target]}",
        "target": {
            "name": plan.target,
            "group": TARGETS[plan.target],
            "stored_as": dict(zip(plan.products, plan.sources)),
        },
        "store": plan.url,
        "created": created.isoformat(timespec="seconds"),
        "code_version": code_version("dlens-evaluate"),
        "period": {
            "start": str(plan.runs[0].astype("datetime64[D]")),
            "days": args.days,
            "runs": [str(r.astype("datetime64[D]")) for r in plan.runs],
        },
        "domain": plan.domain.to_attrs(),
        "products": list(plan.products),
        "members": [p for p in plan.products if p in MEMBERS],
        "reference": plan.reference,
        "species": list(plan.species),
        "leads": list(plan.leads),
        "levels": list(plan.levels),
        "lead_blocks": sorted({lead_block(lead) for lead in plan.leads}),
        "regions": plan.regions.to_meta(),
        "seasons": sorted({season_of(r) for r in plan.runs}),
        "bootstrap": {
            "resamples": plan.resamples,
            "confidence": 0.95,
            "unit": "run",
            "block_runs": plan.block_runs,
            "multiple_tests": "Holm over the species × lead-block rows of a product against a reference",
            "compared_to": [plan.reference, *plan.comparisons],
        },
        "weighted": {
            "window_days": args.weight_days,
            "method": "inverse trailing MSE per species and lead block",
        },
        "station_sets": STATION_SETS,
        "units": "µg/m3",
    }


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"date {text!r}: expected YYYY-MM-DD") from None
