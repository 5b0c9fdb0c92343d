"""`dlens-ingest`: fill and inspect the shared store.

Flags override the ``DLENS_*`` settings; a flag you leave out never overrides them.
Exit status: 0 all done, 1 some input was rejected or some unit failed (the rest landed),
2 bad command line, unusable store, a store another writer holds the lock of, or an S3 endpoint that
stopped answering (``store unreachable``: what was committed stays committed; run the command again).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from dlens.common.config import cli_settings, get_settings
from dlens.common.grid import parse_domain
from dlens.common.lock import StoreLockedError, break_lock, invocation, store_lock
from dlens.common.logging import get_logger
from dlens.common.schema import validate_store
from dlens.common.species import LEVELS_M, SPECIES_NAMES, parse_leads, parse_species
from dlens.common.store import error_line

log = get_logger(__name__)


def _levels(text: str) -> list[int]:
    try:
        return sorted({int(v) for v in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"levels {text!r}: expected metres, e.g. 0 or 0,50,100") from None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"date {text!r}: expected YYYY-MM-DD") from None


def _checked(parse):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlens-ingest", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING (default: DLENS_LOG_LEVEL or INFO)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    def store_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", help="local path or s3://bucket/prefix (default: DLENS_STORE)")

    def grid_args(p: argparse.ArgumentParser, defaults: bool) -> None:
        p.add_argument(
            "--domain",
            type=_checked(parse_domain),
            help="full, demo, tiny or S,N,W,E (default: DLENS_DOMAIN)"
            if defaults
            else "crop for a new store (default: the first file's grid)",
        )
        p.add_argument(
            "--leads",
            type=_checked(parse_leads),
            help="lead hours start:stop:step, inclusive (default: DLENS_LEADS, 0:96:3)"
            if defaults
            else "leads a new store keeps (default: the first forecast's)",
        )
        p.add_argument(
            "--levels",
            type=_levels,
            help="levels in metres (default: DLENS_LEVELS, 0)"
            if defaults
            else "levels a new store keeps (default: the first file's)",
        )

    syn = sub.add_parser("synthetic", help="generate synthetic members, analysis and meteo into the store")
    store_arg(syn)
    syn.add_argument(
        "--start", type=_day, default=date(2025, 7, 1), help="first run date (default 2025-07-01)"
    )
    syn.add_argument("--days", type=int, default=1, help="number of daily 00 UTC runs (default 1)")
    syn.add_argument(
        "--species",
        type=_checked(parse_species),
        default=list(SPECIES_NAMES),
        help="comma list (default all)",
    )
    syn.add_argument("--seed", type=int, help="generator seed (default: DLENS_SEED, 0)")
    grid_args(syn, defaults=True)

    files = sub.add_parser(
        "files", help="ingest CAMS NetCDF/GRIB files or zips of them, and EEA station Parquet files"
    )
    store_arg(files)
    files.add_argument("paths", nargs="+", type=Path, help="files, zips or directories")
    grid_args(files, defaults=False)

    fetch = sub.add_parser("fetch", help="request a period from the ADS (cdsapi) and ingest it")
    store_arg(fetch)
    fetch.add_argument("--start", type=_day, required=True)
    fetch.add_argument("--days", type=int, default=1)
    fetch.add_argument("--species", type=_checked(parse_species), default=list(SPECIES_NAMES))
    fetch.add_argument(
        "--download-dir",
        type=Path,
        default=Path("data/ads"),
        help="where ADS files land (kept: re-runs reuse them)",
    )
    fetch.add_argument("--dry-run", action="store_true", help="print the requests, send nothing")
    grid_args(fetch, defaults=True)

    export = sub.add_parser("export", help="a training-dataset subset (period, domain, species), a new store")
    store_arg(export)
    export.add_argument("--out", required=True, help="the new store: a path or s3:// URL that does not exist")
    export.add_argument("--start", type=_day, required=True, help="first run, YYYY-MM-DD")
    export.add_argument("--days", type=int, required=True, help="number of daily runs")
    export.add_argument(
        "--species", type=_checked(parse_species), default=list(SPECIES_NAMES), help="comma list (all)"
    )
    export.add_argument(
        "--domain", type=_checked(parse_domain), help="a crop of the store's domain (default: all of it)"
    )

    status = sub.add_parser("status", help="table of what the store holds")
    store_arg(status)

    plot = sub.add_parser("plot", help="quick-look PNG: analysis, median and the 11 members of one run")
    store_arg(plot)
    plot.add_argument("--species", choices=SPECIES_NAMES, default="o3")
    plot.add_argument("--run", type=_day, help="run date (default: the latest complete run)")
    plot.add_argument("--lead", type=int, default=12, help="lead hour (default 12)")
    plot.add_argument("--out", type=Path, help="PNG path (default: <species>_<run>_+<lead>h.png)")

    validate = sub.add_parser("validate", help="check the store against the schema")
    store_arg(validate)
    validate.add_argument("--deep", action="store_true", help="also read every committed cell")

    unlock = sub.add_parser("unlock", help="remove the store's writer lock, left by a writer that was killed")
    store_arg(unlock)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.invocation = invocation("dlens-ingest", argv)  # the owner a store lock names
    settings = cli_settings(args.log_level, args.no_progress)
    store = args.store or settings.store
    try:
        return COMMANDS[args.command](args, store)
    except (
        ValueError,
        OSError,
        BotoCoreError,
        ClientError,
        StoreLockedError,
    ) as exc:  # bad input, missing store, S3/Ray trouble, another writer at work
        print(f"dlens-ingest: {error_line(exc)}", file=sys.stderr)
        return 2


def _spec_args(args: argparse.Namespace):
    settings = get_settings()
    domain = args.domain or parse_domain(settings.domain)
    leads = tuple(args.leads or parse_leads(settings.leads))
    levels = tuple(args.levels or _levels(settings.levels))
    return domain, leads, levels


def cmd_synthetic(args: argparse.Namespace, store: str) -> int:
    from dlens.common.writer import StoreSpec
    from dlens.ingest.synthetic_ingest import SyntheticRequest, ingest_synthetic

    if args.days < 1:
        raise ValueError("--days must be at least 1")
    domain, leads, levels = _spec_args(args)
    if unknown := [lv for lv in levels if lv not in LEVELS_M]:
        raise ValueError(
            f"level {unknown[0]} m is not a CAMS level: expected some of {','.join(map(str, LEVELS_M))}"
        )
    seed = args.seed if args.seed is not None else get_settings().seed
    start = datetime.combine(args.start, datetime.min.time())
    req = SyntheticRequest(
        store, StoreSpec(domain, leads, levels), start, args.days, tuple(args.species), seed
    )
    with store_lock(store, args.invocation):
        report = ingest_synthetic(req)
    for line in report.failed:
        print(f"error: {line}", file=sys.stderr)
    print(f"synthetic: {report.done} units written to {store} ({len(report.failed)} failed)")
    return 1 if report.failed else 0


def cmd_files(args: argparse.Namespace, store: str) -> int:
    paths = _expand(args.paths)
    with store_lock(store, args.invocation):
        return _ingest_paths(args, store, paths)


def _ingest_paths(args: argparse.Namespace, store: str, paths: list[Path]) -> int:
    from dlens.ingest.eea import eea_kind, ingest_eea
    from dlens.ingest.files_ingest import ingest_files
    from dlens.ingest.readers import IngestError

    kinds = {p: eea_kind(p) for p in paths}
    cams = [p for p in paths if kinds[p] is None]
    errors, units = [], 0
    if cams or not paths:
        report = ingest_files(store, cams, args.domain, args.leads, args.levels)
        errors, units = report.errors, report.units
    errors += [f"{p.name}: not a readable Parquet file" for p in paths if kinds[p] == "damaged"]
    network = [p for p in paths if kinds[p] == "network"]
    series = [p for p in paths if kinds[p] == "series"]
    if network or series:  # EEA station files: after the CAMS files, which may create the store
        try:
            eea = ingest_eea(store, network, series)
            errors += eea.errors
            print(f"observations: {eea.series} station series, {eea.hours} hours written to {store}")
        except IngestError as exc:
            errors.append(str(exc))
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    print(f"files: {len(paths)} paths, {units} units written to {store}, {len(errors)} rejected")
    return 1 if errors else 0


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f.resolve() for f in p.rglob("*") if f.is_file())
        elif p.exists():
            out.append(p.resolve())  # Ray workers do not share the caller's working directory
        else:
            raise FileNotFoundError(f"{p}: no such file")
    return out


def cmd_fetch(args: argparse.Namespace, store: str) -> int:
    import json

    from dlens.ingest.fetch import build_requests, retrieve

    domain, leads, levels = _spec_args(args)
    requests = build_requests(args.start, args.days, args.species, leads, levels, domain)
    if args.dry_run:
        for req in requests:
            print(json.dumps({"dataset": req.dataset, "target": req.target, "request": req.request}))
        return 0
    paths = retrieve(requests, args.download_dir)
    args.paths, args.domain, args.leads, args.levels = paths, domain, list(leads), list(levels)
    return cmd_files(args, store)


def cmd_status(args: argparse.Namespace, store: str) -> int:
    from dlens.ingest.status import status_table

    print(status_table(store))
    return 0


def cmd_plot(args: argparse.Namespace, store: str) -> int:
    from dlens.ingest.quicklook import quicklook

    run = datetime.combine(args.run, datetime.min.time()) if args.run else None
    out = args.out or Path(f"{args.species}_{args.run or 'latest'}_+{args.lead}h.png")
    print(f"plot: {quicklook(store, args.species, run, args.lead, out)}")
    return 0


def cmd_validate(args: argparse.Namespace, store: str) -> int:
    problems = validate_store(store, deep=args.deep)
    for line in problems:
        print(f"invalid: {line}")
    print(f"store {store}: {'valid' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def cmd_export(args: argparse.Namespace, store: str) -> int:
    from dlens.ingest.export import export_subset

    if args.days < 1:
        raise ValueError(f"--days {args.days}: expected at least 1")
    with store_lock(args.out, args.invocation):  # the new store it writes; the source is only read
        done = export_subset(store, args.out, args.start, args.days, args.species, args.domain)
    print(f"export: {args.out} ({done.runs} runs, {done.analysis_times} analysis hours, "
          f"{done.meteo_runs} meteo runs; README.md inside)")  # fmt: skip
    return 0


def cmd_unlock(args: argparse.Namespace, store: str) -> int:
    held = break_lock(store)
    if held is None:
        print(f"unlock: {store} holds no readable lock (nothing held it, or an unreadable one was removed)")
    else:
        alive = "" if held.expired else "; it had not expired: make sure that writer is gone"
        print(f"unlock: removed the lock of {held.describe()} from {store}{alive}")
    return 0


COMMANDS = {
    "synthetic": cmd_synthetic,
    "export": cmd_export,
    "files": cmd_files,
    "fetch": cmd_fetch,
    "status": cmd_status,
    "plot": cmd_plot,
    "validate": cmd_validate,
    "unlock": cmd_unlock,
}

if __name__ == "__main__":
    sys.exit(main())
