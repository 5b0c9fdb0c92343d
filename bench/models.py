"""Benchmark: one model for every species and lead, or one small model per species (issue 18)?

The year-one proof of concept trains one model per species on a few leads (configs/train/poc.yaml: one
species, the surface, midday of each day); the goal is one model over all species and leads
(configs/train/skill.yaml, which is bench/predictors.py's members-only variant: a shared --workdir reuses
its store and model). On bench/skill.py's protocol (a fold per --start; training, validation and test
periods separated by gaps), per fold: the one model, and poc.yaml trained once per species; every model
predicts the test period (`dlens-train predict`), one `dlens-evaluate` scores them beside the baselines.
Compared at the proof of concept's leads only (its models never trained on the others): RMSE per species
and lead of the one model, of that species' own model, of the median and of the strongest baseline (the
lowest of median, weighted, weighted per region, MOS, EMOS, persistence, climatology), and the ratio
own / one. Per-lead RMSE over 10 test runs: no bootstrap interval (evaluate gives those per lead block,
and the per-species models are not defined over a whole block). Prints a table, writes JSON.

    uv run python bench/models.py --seed 23 --start 2026-06-01,2026-01-05 [--quick] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from predictors import fit_config, ingest_fold, variant_config
from skill import (
    BASELINES,
    LEADS,
    fold_name,
    predict_and_score,
    protocol_arguments,
    training_config,
)


def poc_config(args: argparse.Namespace, start: datetime, species: str) -> dict:
    """poc.yaml for one species, with the fold's periods (those of every other model of the fold)."""
    config = training_config(argparse.Namespace(**{**vars(args), "config": args.poc_config}), start)
    config["name"] = f"poc-{species}"
    config["data"]["species"] = [species]
    return config


def comparison_rows(metrics: dict, one: str, own: dict[str, str], leads: list[int], fold: str) -> list[dict]:
    """Per species and lead of `leads`: RMSE of the one model (product `one`), of the species' own model
    (`own`: species → product), of each baseline, the strongest baseline, and own / one."""
    rmse = {
        (r["product"], r["species"], r["lead"]): r["rmse"]
        for r in metrics["continuous"]
        if r["region"] == "domain" and r["season"] == "all" and r["lead"] is not None
    }
    rows = []
    for sp, product in own.items():
        for lead in leads:
            baselines = {name: rmse[(name, sp, lead)] for name in BASELINES}
            strongest = min(baselines, key=baselines.get)
            one_rmse, own_rmse = rmse[(one, sp, lead)], rmse[(product, sp, lead)]
            rows.append({
                "fold": fold, "species": sp, "lead": lead, "one": one_rmse, "own": own_rmse, **baselines,
                "strongest": strongest, "own_over_one": own_rmse / one_rmse,
                "one_over_strongest": one_rmse / baselines[strongest],
                "own_over_strongest": own_rmse / baselines[strongest],
            })  # fmt: skip
    return rows


def summary(rows: list[dict]) -> dict:
    """Mean own / one per species and overall, and how often each beats the other and the strongest."""
    species = list(dict.fromkeys(r["species"] for r in rows))
    return {
        "mean_own_over_one": float(np.mean([r["own_over_one"] for r in rows])),
        "by_species": {sp: float(np.mean([r["own_over_one"] for r in rows if r["species"] == sp])) for sp in species},
        "one_better_rows": sum(r["one"] < r["own"] for r in rows),
        "one_beats_strongest_rows": sum(r["one"] < r[r["strongest"]] for r in rows),
        "own_beats_strongest_rows": sum(r["own"] < r[r["strongest"]] for r in rows),
        "rows": len(rows),
    }  # fmt: skip


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| fold | species | lead (h) | one model | own model | Median | strongest baseline | own / one "
        "| one / strongest | own / strongest |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['fold']} | {r['species']} | {r['lead']} | {r['one']:.2f} | {r['own']:.2f} | {r['median']:.2f} "
            f"| {r['strongest']} {r[r['strongest']]:.2f} | {r['own_over_one']:.3f} | {r['one_over_strongest']:.3f} "
            f"| {r['own_over_strongest']:.3f} |"
        )  # fmt: skip
    return "\n".join(lines)


def run_fold(args: argparse.Namespace, start: datetime, fold: str, workdir: Path) -> dict:
    """Ingest the fold's store, fit (or reuse) the one model and the per-species ones, predict the test
    period with each and score them in one `dlens-evaluate`; the rows, models and timings."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = str(workdir / "store.zarr")
    one_config = variant_config(args, start, "members")
    species = one_config["data"]["species"]
    configs = {f"poc-{sp}": poc_config(args, start, sp) for sp in species}
    leads = configs[f"poc-{species[0]}"]["data"]["leads"]
    timings: dict[str, float] = {}
    print(f"\n== fold {fold}: training from {start:%Y-%m-%d}, test {one_config['data']['test']}", flush=True)
    ingest_fold(args, start, store, timings)
    models = {"one": fit_config(one_config, "members", store, workdir, timings)}
    models |= {name: fit_config(config, name, store, workdir, timings) for name, config in configs.items()}
    test_start = one_config["data"]["test"]["start"]
    test = ["--start", test_start, "--days", str(args.test_days)]
    report = workdir / "report-models"
    products, metrics = predict_and_score(store, models, test, report, timings)
    own = {sp: products[f"poc-{sp}"] for sp in species}
    return {
        "fold": fold, "start": f"{start:%Y-%m-%d}", "models": models, "leads": leads,
        "periods": {k: one_config["data"][k] for k in ("train", "validation", "test")},
        "rows": comparison_rows(metrics, products["one"], own, leads, fold),
        "timings_s": timings, "report": str(report / "index.html"),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    protocol_arguments(parser)
    parser.add_argument("--config", default="configs/train/skill.yaml", help="the one model")
    parser.add_argument("--poc-config", default="configs/train/poc.yaml", help="the per-species model")
    parser.add_argument("--json", type=Path, default=Path("bench/results/models.json"))
    args = parser.parse_args()
    starts = args.start[:1] if args.quick else args.start
    names = [fold_name(args, start) for start in starts]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dlens-models-"))
    started = time.perf_counter()
    folds = [run_fold(args, s, name, workdir / f"{s:%Y-%m-%d}") for s, name in zip(starts, names)]
    rows = [row for fold in folds for row in fold.pop("rows")]
    result = summary(rows)
    print(f"\n{markdown_table(rows)}\n")
    print(
        f"own model / one model, mean over {result['rows']} rows: {result['mean_own_over_one']:.3f} "
        f"({', '.join(f'{sp} {v:.3f}' for sp, v in result['by_species'].items())}); the one model is better "
        f"in {result['one_better_rows']}; beats the strongest baseline: one model {result['one_beats_strongest_rows']}, "
        f"own models {result['own_beats_strongest_rows']}"
    )  # fmt: skip
    timings = {fold["fold"]: fold["timings_s"] for fold in folds} | {"total": round(time.perf_counter() - started, 1)}  # fmt: skip
    print(f"timings (s): {timings}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "models", "date": f"{datetime.now():%Y-%m-%d %H:%M}", "command": shlex.join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "seed": args.seed, "domain": args.domain, "store_leads": LEADS,
        "configs": {"one": args.config, "own": args.poc_config},
        "folds": folds, "rows": rows, "result": result, "timings_s": timings,
    }, indent=1))  # fmt: skip
    print(f"JSON: {args.json}; reports: {', '.join(fold['report'] for fold in folds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
