"""Benchmark: DL-ENS skill against every baseline, in two seasons of held-out synthetic test periods.

The pipeline as a user runs it, through the console scripts, once per fold, each fold on its own
synthetic store (the generator of DESIGN §5): `dlens-ingest synthetic` (all four species, 3-hourly leads
to 96 h), `dlens-train fit` on a training period (validation period for model selection; normalisation
from the training runs only), `dlens-train predict` and `dlens-evaluate` on a later test period that
neither saw, the three periods separated by gaps of --gap-days (default 4: no 96-h forecast of one
period is valid in the next). The folds start at --start (default a summer and a winter one); the test
period of a fold is a rolling origin: 10 daily runs, each forecast from its own run, the classical
baselines refitted at every run on the analyses before it, DL-ENS trained once per fold. Then, per fold,
species and lead block:
  - RMSE (µg/m³) of DL-ENS and of every baseline: the median, the weighted ensemble (weights over the
    domain, and per region), the learned MOS and EMOS (fitted on the 28 days of analyses before each
    test run), persistence and climatology; the strongest of them in the row (lowest RMSE) and
    DL-ENS / strongest;
  - the generator's floor: the error of the analysis itself against the hidden truth (no forecast beats
    it where that error is independent of the members; where the analysis leans on them, a combination
    can); beside it, the RMSE of a perfect combination of the members, sqrt(analysis error² + the error
    all members share²) (a model can beat that one: shrinking an uncertain forecast towards what is
    likely lowers its RMSE);
  - DL-ENS / median RMSE, and the share of the median's removable error (its MSE above the floor's)
    that DL-ENS removes;
  - the paired moving-block bootstrap (runs resampled in blocks of 4) 95 % interval of
    RMSE(DL-ENS) − RMSE(median) from `dlens-evaluate`, and the same of RMSE(DL-ENS) − RMSE(strongest
    baseline of the row) (`dlens-evaluate --compare-to`); both p-values Holm-adjusted over every
    fold × species × lead-block row of the run: the rows where DL-ENS is significantly better, and worse.
Beside them, what the first delivery of the operational timeline is worth: DL-ENS from the first six
members only (`predict --members early`) against the median of the same six (`median-early`); a figure
of RMSE per lead block, one row of panels per fold (bench/results/skill.png, the README's), and the
README's markdown tables. Then, per fold, the RMSE at the stations of the store (all leads, forecasts
interpolated bilinearly): at the background stations an analysis may assimilate and at the withheld
background ones, which none does, with the same bootstrap against the median and the strongest baseline
there (`dlens-evaluate`'s station_significance), Holm over the station rows.
Targets: DL-ENS better than the median and than the strongest baseline in every row; the mean of
DL-ENS / median over the rows ≤ 0.85. Exit status 1 if a target is missed.

The development draw is seed 0 (the model and its epochs were chosen on its summer fold); report also a
seed and starts nobody developed on (docs/benchmarks.md lists both).

    uv run python bench/skill.py [--seed 0] [--start 2025-06-01,2025-01-06] [--quick] [--domain demo]
                                 [--json bench/results/skill.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import yaml

from dlens.common.grid import parse_domain
from dlens.common.species import LEAD_BLOCKS, lead_block, parse_leads
from dlens.evaluate.evaluation import season_of
from dlens.evaluate.metrics import holm
from dlens.ingest.synthetic.generator import SyntheticGenerator

LEADS = "0:96:3"
RATIO_TARGET = 0.85
#: The baselines scored beside DL-ENS, the reference (median) first.
BASELINES = ("median", "weighted", "weighted-regions", "mos", "emos", "persistence", "climatology")
TITLES = {"median": "Median", "weighted": "Weighted", "weighted-regions": "Weighted per region", "mos": "MOS",
          "emos": "EMOS", "persistence": "Persistence", "climatology": "Climatology"}  # fmt: skip
BIN = Path(sys.executable).parent
#: A verdict (after Holm over the rows) as the README's tables write it.
SHORT = {"better": "better", "worse": "worse", "not significant": "n.s."}


#: A fold is named by the season of its test period (dlens-evaluate's DJF … SON) and its year.
SEASON_NAMES = {"DJF": "winter", "MAM": "spring", "JJA": "summer", "SON": "autumn"}


def parse_starts(text: str) -> list[datetime]:
    """'2025-06-01,2025-01-06' → the first training run of each fold."""
    return [datetime.strptime(day.strip(), "%Y-%m-%d") for day in text.split(",") if day.strip()]


#: The held-out draw of the benchmarks built on this protocol: seed 23's summer and winter folds.
HELD_OUT_SEED, HELD_OUT_STARTS = 23, "2026-06-01,2026-01-05"


def protocol_arguments(
    parser: argparse.ArgumentParser, seed: int = HELD_OUT_SEED, starts: str = HELD_OUT_STARTS, quick: str = ""
) -> None:
    """The protocol's options, shared by the benchmarks built on it: the draw (--seed, --start), --quick,
    the domain and the periods (days of training, validation and test, the gaps), --epochs and --workdir."""
    parser.add_argument("--seed", type=int, default=seed, help=f"generator seed (default {seed})")
    parser.add_argument("--start", type=parse_starts, default=parse_starts(starts),
                        help=f"first training run of each fold, YYYY-MM-DD, comma-separated (default {starts})")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help=quick or "the first fold only")
    parser.add_argument("--domain", default="demo", help="domain (default demo)")
    parser.add_argument("--train-days", type=int, default=28)
    parser.add_argument("--validation-days", type=int, default=4)
    parser.add_argument("--test-days", type=int, default=10)
    parser.add_argument("--gap-days", type=int, default=4, help="days without runs between the periods (4)")
    parser.add_argument("--epochs", type=int, help="override the configs' epochs")
    parser.add_argument("--workdir", type=Path, help="stores and runs (default: a temporary directory); "
                        "rerun on it, a model is reused when its config is unchanged")  # fmt: skip


def block_rmse(metrics: dict) -> dict[tuple[str, str, str], float]:
    """RMSE by (product, species, lead block) over the domain and every season, from evaluate's metrics."""
    return {
        (r["product"], r["species"], r["lead_block"]): r["rmse"]
        for r in metrics["continuous"]
        if r["region"] == "domain" and r["season"] == "all" and r["lead"] is None
    }


def product_rows(metrics: dict, products: dict[str, str], species: list[str], fold: str) -> list[dict]:
    """One row per species and lead block of a fold: RMSE of each model (`products`: name → product) and of
    each baseline, and the strongest baseline (the lowest RMSE of `BASELINES`)."""
    rmse = block_rmse(metrics)
    rows = []
    for sp in species:
        for block in LEAD_BLOCKS:
            baselines = {name: rmse[(name, sp, block)] for name in BASELINES}
            rows.append({
                "fold": fold, "species": sp, "lead_block": block,
                "rmse": {name: rmse[(product, sp, block)] for name, product in products.items()},
                "baselines": baselines, "strongest": min(baselines, key=baselines.get),
            })  # fmt: skip
    return rows


def fold_name(args: argparse.Namespace, start: datetime) -> str:
    """'summer 2025': the season and year of the fold's test period."""
    test_start = datetime.strptime(training_config(args, start)["data"]["test"]["start"], "%Y-%m-%d")
    return f"{SEASON_NAMES[season_of(np.datetime64(test_start))]} {test_start:%Y}"


def training_config(args: argparse.Namespace, start: datetime) -> dict:
    """The training config of one fold: its periods follow `start`; the model is the committed one."""
    config = yaml.safe_load(Path(args.config).read_text())
    gap = timedelta(days=args.gap_days)
    train_end = start + timedelta(days=args.train_days - 1)
    val_start = train_end + gap + timedelta(days=1)
    val_end = val_start + timedelta(days=args.validation_days - 1)
    test_start = val_end + gap + timedelta(days=1)
    config["name"] = "skill-bench"
    config["seed"] = args.seed
    config["data"]["train"] = {"start": f"{start:%Y-%m-%d}", "end": f"{train_end:%Y-%m-%d}"}
    config["data"]["validation"] = {"start": f"{val_start:%Y-%m-%d}", "end": f"{val_end:%Y-%m-%d}"}
    config["data"]["test"] = {
        "start": f"{test_start:%Y-%m-%d}",
        "end": f"{test_start + timedelta(days=args.test_days - 1):%Y-%m-%d}",
    }
    if args.epochs:
        config["optim"]["epochs"] = args.epochs
    return config


def step(name: str, command: list[str], timings: dict) -> str:
    """Run one console script, echoing its output; its stdout, or exit with its error."""
    print(f"\n$ {shlex.join(command)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=None, text=True)
    timings[name] = round(time.perf_counter() - started, 1)
    print(done.stdout.rstrip(), flush=True)
    if done.returncode != 0:
        sys.exit(f"{sys.argv[0]}: {name} failed with exit status {done.returncode}")
    return done.stdout


def predict_and_score(
    store: str,
    models: dict[str, str],
    test: list[str],
    report: Path,
    timings: dict,
    compare_to: Sequence[str] = (),
) -> tuple[dict[str, str], dict]:
    """Predict the test period (`test`: --start, --days) with each model (name → id) through `dlens-train
    predict`, then score their products beside the baselines in one `dlens-evaluate` into `report`, with the
    paired bootstrap against `compare_to`; the products (name → product) and the metrics."""
    for name, model_id in models.items():
        step(f"predict {name}", [str(BIN / "dlens-train"), "--no-progress", "predict", "--store", store,
                                 "--model", model_id, *test], timings)  # fmt: skip
    products = {name: f"dlens-{m}" for name, m in models.items()}
    compare = ["--compare-to", ",".join(compare_to)] if compare_to else []
    step("evaluate", [str(BIN / "dlens-evaluate"), "--no-progress", "--store", store, *test, "--products",
                      ",".join([*products.values(), *BASELINES]), *compare, "--out", str(report)], timings)  # fmt: skip
    return products, json.loads((report / "metrics.json").read_text())


def floor_by_block(
    domain: str, seed: int, runs: list[datetime], species: list[str], leads: list[int]
) -> dict:
    """Per species and lead block (and 'all'): RMSE of the analysis error (the floor) and of a perfect
    combination of the members (the truth run on the forecast weather: the error all members share),
    scored on the analysis, sqrt(analysis error² + shared error²), from the generator."""
    generator = SyntheticGenerator(parse_domain(domain), seed)
    sums: dict[tuple[str, str], np.ndarray] = {}
    for run in runs:
        for sp in species:
            for lead in leads:
                shared = generator.error_floor(sp, run, lead)
                analysis = generator.analysis_floor(sp, run + timedelta(hours=lead))
                for block in (lead_block(lead), "all"):
                    acc = sums.setdefault((sp, block), np.zeros(3))
                    acc += [
                        analysis["analysis_sq"],
                        analysis["analysis_sq"] + shared["weather_sq"],
                        shared["n"],
                    ]
    return {
        key: {"floor": float(np.sqrt(a / n)), "combination": float(np.sqrt(c / n))}
        for key, (a, c, n) in sums.items()
    }


def skill_table(metrics: dict, product: str, floors: dict, species: list[str], fold: str) -> list[dict]:
    """One row per species and lead block of a fold: the RMSEs, the ratios, the removable share, the
    bootstrap against the median and against the strongest baseline."""
    rmse = block_rmse(metrics)
    significance = {
        (r["species"], r["lead_block"], r["reference"]): r
        for r in metrics["significance"]
        if r["product"] == product
    }
    rows = []
    for sp in species:
        for block in (*LEAD_BLOCKS, "all"):
            if (product, sp, block) not in rmse:
                continue
            dl = rmse[(product, sp, block)]
            baselines = {name: rmse[(name, sp, block)] for name in BASELINES}
            strongest = min(baselines, key=baselines.get)
            dl_early, median_early = (rmse[(p, sp, block)] for p in (f"{product}-early", "median-early"))
            floor, median = floors[(sp, block)]["floor"], baselines["median"]
            boot, against = significance[(sp, block, "median")], significance[(sp, block, strongest)]
            rows.append({
                "fold": fold, "species": sp, "lead_block": block, "dlens": dl, **baselines,
                "strongest": strongest, "ratio_strongest": dl / baselines[strongest],
                "dlens_early": dl_early, "median_early": median_early,
                "floor": floor, "perfect_combination": floors[(sp, block)]["combination"], "ratio": dl / median,
                "removable_share": (median**2 - dl**2) / (median**2 - floor**2),
                "ci_low": boot["ci_low"], "ci_high": boot["ci_high"], "p_median": boot["p_value"],
                "ci_low_strongest": against["ci_low"], "ci_high_strongest": against["ci_high"],
                "p_strongest": against["p_value"],
            })  # fmt: skip
    return rows


def judge(rows: list[dict], reference: str) -> None:
    """Holm-adjust the p-values of DL-ENS against `reference` ('median' or 'strongest') over `rows` (the
    fold × species × lead-block rows, or the station rows, of the run) and set each row's
    `p_holm_<reference>` and `verdict_<reference>` at 5 %."""
    key = f"p_{reference}"
    adjusted = holm(np.array([np.nan if r[key] is None else r[key] for r in rows]))
    for row, p in zip(rows, adjusted):
        row[f"p_holm_{reference}"] = None if np.isnan(p) else float(p)
        other = row[row["strongest"]] if reference == "strongest" else row["median"]
        significant = row[f"p_holm_{reference}"] is not None and row[f"p_holm_{reference}"] < 0.05
        row[f"verdict_{reference}"] = (
            "not significant" if not significant else "better" if row["dlens"] < other else "worse"
        )


def verdicts(rows: list[dict]) -> dict:
    """The targets, judged on the per-block rows of every fold (not the 'all' rows, which repeat them and
    get no verdict); sets the rows' verdicts against the median and the strongest baseline (`judge`)."""
    blocks = [r for r in rows if r["lead_block"] != "all"]
    mean_ratio = float(np.mean([r["ratio"] for r in blocks]))
    judge(blocks, "median")
    judge(blocks, "strongest")
    return {
        "beats_median_everywhere": all(r["dlens"] < r["median"] for r in blocks),
        "beats_weighted_everywhere": all(r["dlens"] < r["weighted"] for r in blocks),
        "beats_strongest_rows": sum(r["dlens"] < r[r["strongest"]] for r in blocks),
        "beats_strongest_everywhere": all(r["dlens"] < r[r["strongest"]] for r in blocks),
        "strongest_baselines": {name: sum(r["strongest"] == name for r in blocks) for name in BASELINES},
        "mean_ratio_strongest": float(np.mean([r["ratio_strongest"] for r in blocks])),
        "mean_ratio": mean_ratio,
        "mean_ratio_target": RATIO_TARGET,
        "mean_ratio_met": mean_ratio <= RATIO_TARGET,
        "better_than_median_rows_holm": sum(r["verdict_median"] == "better" for r in blocks),
        "worse_than_median_rows_holm": sum(r["verdict_median"] == "worse" for r in blocks),
        "better_than_strongest_rows_holm": sum(r["verdict_strongest"] == "better" for r in blocks),
        "worse_than_strongest_rows_holm": sum(r["verdict_strongest"] == "worse" for r in blocks),
        "rows": len(blocks),
        "by_fold": {
            fold: {
                "mean_ratio": float(np.mean([r["ratio"] for r in blocks if r["fold"] == fold])),
                "mean_ratio_strongest": float(
                    np.mean([r["ratio_strongest"] for r in blocks if r["fold"] == fold])
                ),
                "beats_strongest_rows": sum(
                    r["dlens"] < r[r["strongest"]] for r in blocks if r["fold"] == fold
                ),
                "rows": sum(r["fold"] == fold for r in blocks),
            }
            for fold in dict.fromkeys(r["fold"] for r in blocks)
        },
    }


def hours(block: str) -> str:
    """'025-048' → '25–48'."""
    return "–".join(str(int(h)) for h in block.split("-"))


def markdown_table(rows: list[dict]) -> str:
    """The README's results table: RMSE per fold, species and lead block, the best of each row in bold,
    the ratios with their verdicts after Holm."""
    lines = [
        f"| fold | species | leads (h) | DL-ENS | {' | '.join(TITLES[name] for name in BASELINES)} "
        "| DL-ENS / Median | DL-ENS / strongest | DL-ENS, first 6 | Median, first 6 |",
        "| --- | --- | --- |" + " ---: |" * (len(BASELINES) + 5),
    ]
    for r in rows:
        if r["lead_block"] == "all":
            continue
        values = [r["dlens"], *(r[name] for name in BASELINES)]
        cells = [f"**{v:.2f}**" if v == min(values) else f"{v:.2f}" for v in values]
        lines.append(
            f"| {r['fold']} | {r['species']} | {hours(r['lead_block'])} | {' | '.join(cells)} "
            f"| {r['ratio']:.2f} ({SHORT[r['verdict_median']]}) "
            f"| {r['ratio_strongest']:.2f} ({r['strongest']}, {SHORT[r['verdict_strongest']]}) "
            f"| {r['dlens_early']:.2f} | {r['median_early']:.2f} |"
        )
    return "\n".join(lines)


#: The station sets of the station table: the background stations an analysis may assimilate, and the
#: withheld ones of the same type (like for like: traffic stations, say, differ in representativeness).
STATION_SETS = ("background", "withheld-background")


def station_table(metrics: dict, product: str, species: list[str], fold: str) -> list[dict]:
    """Per species and station set, all leads: RMSE at the stations of DL-ENS, of the median and of the
    strongest baseline there, from `dlens-evaluate`'s `stations` records, with the bootstrap over runs of
    DL-ENS against both (`station_significance`)."""
    found = {(r["product"], r["species"], r["stations"]): r for r in metrics.get("stations", [])
             if r["lead_block"] == "all" and r["rmse"] is not None}  # fmt: skip
    boot = {(r["reference"], r["species"], r["stations"]): r for r in metrics.get("station_significance", [])
            if r["lead_block"] == "all" and r["product"] == product}  # fmt: skip
    rows = []
    for sp in species:
        for name in STATION_SETS:
            if (product, sp, name) not in found or ("median", sp, name) not in found:
                continue
            baselines = {b: found[(b, sp, name)]["rmse"] for b in BASELINES if (b, sp, name) in found}
            strongest = min(baselines, key=baselines.get)
            dlens = found[(product, sp, name)]
            median, best = (boot.get((b, sp, name), {}) for b in ("median", strongest))
            rows.append({
                "fold": fold, "species": sp, "stations": name, "station_count": dlens["station_count"],
                "n": dlens["n"], "dlens": dlens["rmse"], "dlens_bias": dlens["bias"], **baselines,
                "strongest": strongest, "ratio": dlens["rmse"] / baselines["median"],
                "ratio_strongest": dlens["rmse"] / baselines[strongest],
                "ci_low": median.get("ci_low"), "ci_high": median.get("ci_high"), "p_median": median.get("p_value"),
                "ci_low_strongest": best.get("ci_low"), "ci_high_strongest": best.get("ci_high"),
                "p_strongest": best.get("p_value"),
            })  # fmt: skip
    return rows


def interval(low: float | None, high: float | None) -> str:
    """'[−0.42, +0.10]', or 'no interval' where the bootstrap gave none."""
    return "no interval" if low is None or high is None else f"[{low:+.2f}, {high:+.2f}]".replace("-", "−")


def station_markdown(rows: list[dict]) -> str:
    """The README's station table: RMSE at the background stations, assimilated and withheld, and the
    bootstrap of DL-ENS against the median and the strongest baseline (Holm over the table's rows)."""
    lines = [
        "| fold | species | stations | n | DL-ENS | Median | strongest baseline | DL-ENS / Median "
        "| 95 % CI of DL−Median | DL-ENS / strongest | 95 % CI of DL−strongest |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | --- | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['fold']} | {r['species']} | {r['stations']} ({r['station_count']}) | {int(r['n'])} "
            f"| {r['dlens']:.2f} | {r['median']:.2f} | {TITLES[r['strongest']]} {r[r['strongest']]:.2f} "
            f"| {r['ratio']:.3f} ({SHORT[r['verdict_median']]}) | {interval(r['ci_low'], r['ci_high'])} "
            f"| {r['ratio_strongest']:.3f} ({SHORT[r['verdict_strongest']]}) "
            f"| {interval(r['ci_low_strongest'], r['ci_high_strongest'])} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """RMSE per lead block, one row of panels per fold and one panel per species: DL-ENS, the median, the
    weighted ensemble, MOS, EMOS, the first-six variants and the floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folds = list(dict.fromkeys(r["fold"] for r in rows))
    species = list(dict.fromkeys(r["species"] for r in rows))
    blocks = list(LEAD_BLOCKS)
    fig, axes = plt.subplots(len(folds), len(species), figsize=(3.2 * len(species), 2.9 * len(folds)),
                             constrained_layout=True, squeeze=False)  # fmt: skip
    lines = [("dlens", "DL-ENS", "C0", "-"), ("median", "Median", "C3", "-"), ("weighted", "Weighted", "C2", "-"),
             ("mos", "MOS", "C1", "-"), ("emos", "EMOS", "C4", "-"),
             ("dlens_early", "DL-ENS, first 6", "C0", ":"), ("median_early", "Median, first 6", "C3", ":"),
             ("floor", "analysis error (floor)", "0.6", "--")]  # fmt: skip
    for ax_row, fold in zip(axes, folds):
        for ax, sp in zip(ax_row, species):
            by_block = {r["lead_block"]: r for r in rows if r["species"] == sp and r["fold"] == fold}
            for key, label, colour, style in lines:
                ax.plot(range(len(blocks)), [by_block[b][key] for b in blocks], style, color=colour, marker="o",
                        markersize=3, label=label)  # fmt: skip
            ax.set_title(f"{sp}, {fold}", fontsize=9)
            ax.set_xticks(range(len(blocks)), [hours(b) for b in blocks], fontsize=8)
        ax_row[0].set_ylabel("RMSE (µg/m³)")
    for ax in axes[-1]:
        ax.set_xlabel("lead (h)")
    axes[0][0].legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(rows: list[dict]) -> None:
    names = "".join(f" {name.replace('weighted-regions', 'w-region')[:8]:>8}" for name in BASELINES)
    header = (
        f"{'fold':<12} {'species':<7} {'leads':<8} {'DL-ENS':>8}{names} {'floor':>7} {'perfect':>8} "
        f"{'DL/med':>7} {'DL/best':>7} {'best':<11} {'removed':>8}  {'95% CI of DL−median':<22} "
        f"{'vs median':<16}{'95% CI of DL−best':<20} vs best (Holm over the folds' rows)"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        values = "".join(f" {r[name]:8.2f}" for name in BASELINES)
        print(
            f"{r['fold']:<12} {r['species']:<7} {r['lead_block']:<8} {r['dlens']:8.2f}{values} "
            f"{r['floor']:7.2f} {r['perfect_combination']:8.2f} {r['ratio']:7.3f} {r['ratio_strongest']:7.3f} "
            f"{r['strongest']:<11} {r['removable_share']:8.1%}  {interval(r['ci_low'], r['ci_high']):<22} "
            f"{r.get('verdict_median', ''):<16}{interval(r['ci_low_strongest'], r['ci_high_strongest']):<20}  "
            f"{r.get('verdict_strongest', '')}"
        )


def run_fold(args: argparse.Namespace, start: datetime, fold: str, workdir: Path) -> dict:
    """Ingest, fit, predict and evaluate the fold named `fold` in `workdir`; its periods, model, rows and
    timings."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = str(workdir / "store.zarr")
    config = training_config(args, start)
    config_path, fitted = workdir / "train.yaml", workdir / "model-id"
    text = yaml.safe_dump(config, sort_keys=False)
    if fitted.exists() and config_path.exists() and config_path.read_text() == text:
        print(f"reusing model {fitted.read_text()} of {workdir} (same config; delete the folder to refit)")
    else:
        fitted.unlink(missing_ok=True)
        config_path.write_text(text)
    days = args.train_days + args.validation_days + args.test_days + 2 * args.gap_days
    test_start = datetime.strptime(config["data"]["test"]["start"], "%Y-%m-%d")
    species = config["data"]["species"]
    timings: dict[str, float] = {}
    print(f"\n== fold {fold}: training from {start:%Y-%m-%d}, test {config['data']['test']}", flush=True)

    step("ingest", [str(BIN / "dlens-ingest"), "--no-progress", "synthetic", "--store", store,
                    "--start", f"{start:%Y-%m-%d}", "--days", str(days), "--domain", args.domain,
                    "--leads", LEADS, "--seed", str(args.seed)], timings)  # fmt: skip
    if not fitted.exists():
        out = step("fit", [str(BIN / "dlens-train"), "--no-progress", "fit", "--store", store,
                           "--config", str(config_path), "--storage", str(workdir / "ray")], timings)  # fmt: skip
        fitted.write_text(re.search(r"model: (\S+)", out).group(1))
    model_id = fitted.read_text()
    test = ["--start", f"{test_start:%Y-%m-%d}", "--days", str(args.test_days)]
    step("predict", [str(BIN / "dlens-train"), "--no-progress", "predict", "--store", store,
                     "--model", model_id, *test], timings)  # fmt: skip
    step("predict-early", [str(BIN / "dlens-train"), "--no-progress", "predict", "--store", store,
                           "--model", model_id, *test, "--members", "early"], timings)  # fmt: skip
    product = f"dlens-{model_id}"
    report = workdir / "report"
    step("evaluate", [str(BIN / "dlens-evaluate"), "--no-progress", "--store", store, *test, "--products",
                      ",".join([product, f"{product}-early", *BASELINES, "median-early"]),
                      "--compare-to", ",".join(BASELINES[1:]), "--out", str(report)],
         timings)  # fmt: skip

    runs = [test_start + timedelta(days=d) for d in range(args.test_days)]
    floors = floor_by_block(args.domain, args.seed, runs, species, parse_leads(LEADS))
    metrics = json.loads((report / "metrics.json").read_text())
    return {
        "fold": fold, "start": f"{start:%Y-%m-%d}", "model_id": model_id, "config": config,
        "periods": {k: config["data"][k] for k in ("train", "validation", "test")},
        "rows": skill_table(metrics, product, floors, species, fold),
        "stations": station_table(metrics, product, species, fold),
        "timings_s": timings, "report": str(report / "index.html"),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    protocol_arguments(parser, 0, "2025-06-01,2025-01-06", "the first fold only (about half the time)")
    parser.add_argument(
        "--config", default="configs/train/skill.yaml", help="the model and optimiser to train"
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/skill.json"))
    args = parser.parse_args()
    starts = args.start[:1] if args.quick else args.start
    if not starts:
        parser.error("--start: no date given")
    names = [fold_name(args, start) for start in starts]
    if len(set(names)) < len(names):
        parser.error(f"--start: two folds test in the same season and year ({', '.join(names)})")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dlens-skill-"))
    started = time.perf_counter()
    folds = [run_fold(args, start, name, workdir / f"{start:%Y-%m-%d}") for start, name in zip(starts, names)]
    rows = [row for fold in folds for row in fold.pop("rows")]
    at_stations = [row for fold in folds for row in fold.pop("stations")]
    total = round(time.perf_counter() - started, 1)
    result = verdicts(rows)
    judge(at_stations, "median")
    judge(at_stations, "strongest")
    print_table(rows)
    print(
        f"\nmean DL-ENS / median over {result['rows']} fold × species × lead-block rows: {result['mean_ratio']:.3f} "
        f"(target ≤ {RATIO_TARGET}); better than the median everywhere: {result['beats_median_everywhere']}; "
        f"than the strongest baseline in {result['beats_strongest_rows']} of {result['rows']} rows "
        f"(mean DL-ENS / strongest {result['mean_ratio_strongest']:.3f}; strongest: "
        f"{ {k: v for k, v in result['strongest_baselines'].items() if v} }); after Holm's correction over the "
        f"rows, against the median: significantly better in {result['better_than_median_rows_holm']}, worse in "
        f"{result['worse_than_median_rows_holm']}; against the strongest baseline: significantly better in "
        f"{result['better_than_strongest_rows_holm']}, worse in {result['worse_than_strongest_rows_holm']}"
    )
    for fold, summary in result["by_fold"].items():
        print(f"  {fold}: mean DL-ENS / median {summary['mean_ratio']:.3f}, / strongest "
              f"{summary['mean_ratio_strongest']:.3f}, better than the strongest in "
              f"{summary['beats_strongest_rows']} of {summary['rows']} rows")  # fmt: skip
    print(
        "\nAt the stations (all leads; forecasts interpolated bilinearly; verdicts after Holm over these rows):"
    )
    print(station_markdown(at_stations))
    timings = {fold["fold"]: fold["timings_s"] for fold in folds} | {"total": total}
    print(f"timings (s): {timings}")
    passed = (
        result["beats_median_everywhere"]
        and result["beats_strongest_everywhere"]
        and result["mean_ratio_met"]
    )
    print("PASS" if passed else "FAIL")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "skill", "date": f"{datetime.now():%Y-%m-%d %H:%M}", "command": shlex.join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "seed": args.seed, "domain": args.domain, "leads": LEADS, "species": folds[0]["config"]["data"]["species"],
        "folds": folds, "rows": rows, "stations": at_stations, "result": result, "passed": passed,
        "timings_s": timings,
    }, indent=1))  # fmt: skip
    figure = args.json.with_suffix(".png")
    plot(rows, figure)
    print(f"\n{markdown_table(rows)}\n")
    print(f"JSON: {args.json}; figure: {figure}; reports: {', '.join(fold['report'] for fold in folds)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
