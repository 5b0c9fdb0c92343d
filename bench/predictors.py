"""Benchmark: what each phase-two predictor buys (issue 18), an ablation on the skill protocol.

The same architecture and budget (configs/train/skill.yaml) trained five times per fold, on the same
synthetic store and periods as bench/skill.py (training, validation and test periods separated by gaps;
the test period a rolling origin of daily runs), with the predictors of `data.predictors`:
  - members:        the members, their median and spread, static fields and time (phase one);
  - meteo:          + the meteo forecast at the valid time and its change since the run;
  - analysis:       + the analysis of the 24 h before the run, as available at run time;
  - meteo-analysis: + both;
  - all:            + both, the solar zenith angle and the member statistics (min, max, quantiles).
The store holds two days before the first training run, so that every variant trains on the same runs
(the recent analysis of the first run reaches 25 h back). Each model predicts the test period through
`dlens-train predict` and one `dlens-evaluate` per fold scores them all beside the baselines of
bench/skill.py, with the paired moving-block bootstrap of every variant against the members-only model
and against each baseline. Per fold, species and lead block: RMSE of every variant, of the strongest
baseline (the lowest RMSE of median, weighted, weighted per region, MOS, EMOS, persistence and
climatology), each variant's gain over members-only (1 − RMSE / RMSE(members)) and its ratio to the
strongest baseline, Holm-adjusted over the fold × species × lead-block rows. The gain of each family:
meteo, recent analysis and both against members-only, zenith and statistics against meteo-analysis.
Targets (issue 18): with every predictor DL-ENS beats the strongest baseline in every row,
Holm-significant, with a mean RMSE ratio ≤ 0.90; meteo and recent analysis together improve on
members-only by ≥ 5 % RMSE on average; the recent analysis helps most on day one. Exit status 1 if a
target is missed. A table, bench/results/predictors.json and a figure beside it.

Run it on a draw nobody developed on (docs/benchmarks.md says which seeds were used for what):

    uv run python bench/predictors.py --seed 23 --start 2026-06-01,2026-01-05 [--quick] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from skill import (
    BASELINES,
    BIN,
    LEADS,
    fold_name,
    hours,
    predict_and_score,
    product_rows,
    protocol_arguments,
    step,
    training_config,
)

from dlens.common.species import LEAD_BLOCKS
from dlens.evaluate.metrics import holm

#: The predictors switched on in each variant (all others off), members-only first.
METEO = {"meteo": True, "meteo_change": True}
VARIANTS: dict[str, dict[str, bool]] = {
    "members": {},
    "meteo": METEO,
    "analysis": {"recent_analysis": True},
    "meteo-analysis": METEO | {"recent_analysis": True},
    "all": METEO | {"recent_analysis": True, "zenith": True, "statistics": True},
}
#: Each family's gain: (variant with it, variant without it).
FAMILIES = {
    "meteo": ("meteo", "members"),
    "recent analysis": ("analysis", "members"),
    "meteo + recent analysis": ("meteo-analysis", "members"),
    "zenith + statistics": ("all", "meteo-analysis"),
}
RATIO_TARGET = 0.90
GAIN_TARGET = 0.05
#: Days of store before the first training run: the first run's recent analysis reaches 25 h back.
LEAD_IN_DAYS = 2


def variant_config(args: argparse.Namespace, start: datetime, variant: str) -> dict:
    """The training config of one variant of a fold: bench/skill.py's, with the variant's predictors."""
    config = training_config(args, start)
    config["name"] = f"predictors-{variant}"
    config["data"]["predictors"] = dict(VARIANTS[variant])
    return config


def fit_config(config: dict, name: str, store: str, workdir: Path, timings: dict) -> str:
    """The model id of `config` (fitted in `workdir`/`name`), fitted here unless that folder holds a model of
    the same config."""
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    config_path, fitted = folder / "train.yaml", folder / "model-id"
    text = yaml.safe_dump(config, sort_keys=False)
    if fitted.exists() and config_path.exists() and config_path.read_text() == text:
        print(f"reusing model {fitted.read_text()} of {folder} (same config; delete the folder to refit)")
        return fitted.read_text()
    fitted.unlink(missing_ok=True)
    config_path.write_text(text)
    out = step(f"fit {name}", [str(BIN / "dlens-train"), "--no-progress", "fit", "--store", store,
                               "--config", str(config_path), "--storage", str(folder / "ray")], timings)  # fmt: skip
    fitted.write_text(re.search(r"model: (\S+)", out).group(1))
    return fitted.read_text()


def ingest_fold(args: argparse.Namespace, start: datetime, store: str, timings: dict) -> None:
    """The fold's synthetic store, from `LEAD_IN_DAYS` before its first training run to its last test run's
    last lead (a no-op where it is complete)."""
    days = LEAD_IN_DAYS + args.train_days + args.validation_days + args.test_days + 2 * args.gap_days
    first = start - timedelta(days=LEAD_IN_DAYS)
    step("ingest", [str(BIN / "dlens-ingest"), "--no-progress", "synthetic", "--store", store,
                    "--start", f"{first:%Y-%m-%d}", "--days", str(days), "--domain", args.domain,
                    "--leads", LEADS, "--seed", str(args.seed)], timings)  # fmt: skip


def ablation_rows(metrics: dict, products: dict[str, str], species: list[str], fold: str) -> list[dict]:
    """One row per species and lead block of a fold: RMSE of each variant (`products`: variant → product)
    and baseline, the strongest baseline, each variant's gain over members-only and ratio to the strongest,
    and the bootstrap p-values of each variant against members-only and the strongest baseline."""
    p_value = {(r["product"], r["species"], r["lead_block"], r["reference"]): r["p_value"]
               for r in metrics["significance"]}  # fmt: skip
    members = products["members"]
    rows = product_rows(metrics, products, species, fold)
    for row in rows:
        dl, sp, block, strongest = row["rmse"], row["species"], row["lead_block"], row["strongest"]
        row.update({
            "gain": {v: 1 - x / dl["members"] for v, x in dl.items()},
            "ratio_strongest": {v: x / row["baselines"][strongest] for v, x in dl.items()},
            "p_members": {v: p_value.get((p, sp, block, members)) for v, p in products.items() if p != members},
            "p_strongest": {v: p_value.get((p, sp, block, strongest)) for v, p in products.items()},
        })  # fmt: skip
    return rows


def judge(rows: list[dict]) -> None:
    """Holm-adjust, per variant, its p-values against members-only and against the strongest baseline over
    `rows`, and set the verdicts at 5 % (`verdict_members`, `verdict_strongest`: variant → verdict)."""
    for key, other in (("members", lambda r: r["rmse"]["members"]), ("strongest", lambda r: r["baselines"][r["strongest"]])):  # fmt: skip
        for variant in VARIANTS:
            if variant not in rows[0][f"p_{key}"]:
                continue
            raw = np.array(
                [np.nan if r[f"p_{key}"][variant] is None else r[f"p_{key}"][variant] for r in rows]
            )
            for row, p in zip(rows, holm(raw)):
                verdict = "n.s." if np.isnan(p) or p >= 0.05 else "better" if row["rmse"][variant] < other(row) else "worse"  # fmt: skip
                row.setdefault(f"verdict_{key}", {})[variant] = verdict


def summary(rows: list[dict]) -> dict:
    """The family gains (mean over the rows, and per lead block), each variant's mean ratio to the strongest
    baseline and its Holm verdicts, and the targets."""
    families = {}
    for family, (with_it, without) in FAMILIES.items():
        gains = [1 - r["rmse"][with_it] / r["rmse"][without] for r in rows]
        families[family] = {
            "with": with_it, "without": without, "mean_gain": float(np.mean(gains)),
            "by_block": {b: float(np.mean([g for g, r in zip(gains, rows) if r["lead_block"] == b]))
                         for b in LEAD_BLOCKS},
        }  # fmt: skip
    variants = {
        v: {
            "mean_ratio_strongest": float(np.mean([r["ratio_strongest"][v] for r in rows])),
            "mean_gain": float(np.mean([r["gain"][v] for r in rows])),
            "beats_strongest_rows": sum(r["rmse"][v] < r["baselines"][r["strongest"]] for r in rows),
            "better_than_strongest_rows_holm": sum(r["verdict_strongest"][v] == "better" for r in rows),
            "worse_than_strongest_rows_holm": sum(r["verdict_strongest"][v] == "worse" for r in rows),
            "better_than_members_rows_holm": sum(r.get("verdict_members", {}).get(v) == "better" for r in rows),
            "worse_than_members_rows_holm": sum(r.get("verdict_members", {}).get(v) == "worse" for r in rows),
        }
        for v in VARIANTS
    }  # fmt: skip
    analysis = families["recent analysis"]["by_block"]
    targets = {
        "all_beats_strongest_everywhere_holm": variants["all"]["better_than_strongest_rows_holm"]
        == len(rows),
        "all_mean_ratio_strongest_met": variants["all"]["mean_ratio_strongest"] <= RATIO_TARGET,
        "meteo_analysis_gain_met": families["meteo + recent analysis"]["mean_gain"] >= GAIN_TARGET,
        "analysis_helps_most_on_day_one": max(analysis, key=analysis.get) == next(iter(LEAD_BLOCKS)),
    }
    return {"rows": len(rows), "families": families, "variants": variants, "targets": targets,
            "ratio_target": RATIO_TARGET, "gain_target": GAIN_TARGET}  # fmt: skip


def markdown_table(rows: list[dict]) -> str:
    """The ablation table: RMSE of each variant and of the strongest baseline per row, the gains over
    members-only (with the verdict of `all` against members-only and against the strongest, Holm)."""
    names = list(VARIANTS)
    lines = [
        f"| fold | species | leads (h) | {' | '.join(names)} | strongest baseline | "
        + " | ".join(f"gain of {v}" for v in names[1:]) + " | all / strongest |",
        "| --- | --- | --- |" + " ---: |" * (len(names) + 1) + " ---: |" * len(names),
    ]  # fmt: skip
    for r in rows:
        values = [r["rmse"][v] for v in names] + [r["baselines"][r["strongest"]]]
        cells = [f"**{x:.2f}**" if x == min(values) else f"{x:.2f}" for x in values]
        gains = [f"{r['gain'][v]:+.1%} ({r['verdict_members'][v]})" for v in names[1:]]
        lines.append(
            f"| {r['fold']} | {r['species']} | {hours(r['lead_block'])} | {' | '.join(cells[:-1])} "
            f"| {r['strongest']} {cells[-1]} | {' | '.join(gains)} "
            f"| {r['ratio_strongest']['all']:.3f} ({r['verdict_strongest']['all']}) |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """RMSE relative to members-only per lead block, one row of panels per fold and one panel per species:
    each variant and the strongest baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folds = list(dict.fromkeys(r["fold"] for r in rows))
    species = list(dict.fromkeys(r["species"] for r in rows))
    blocks = list(LEAD_BLOCKS)
    fig, axes = plt.subplots(len(folds), len(species), figsize=(3.2 * len(species), 2.9 * len(folds)),
                             constrained_layout=True, squeeze=False)  # fmt: skip
    for ax_row, fold in zip(axes, folds):
        for ax, sp in zip(ax_row, species):
            by_block = {r["lead_block"]: r for r in rows if r["species"] == sp and r["fold"] == fold}
            for k, variant in enumerate(VARIANTS):
                ax.plot(range(len(blocks)), [by_block[b]["rmse"][variant] / by_block[b]["rmse"]["members"]
                        for b in blocks], marker="o", markersize=3, color=f"C{k}", label=variant)  # fmt: skip
            strongest = [by_block[b]["baselines"][by_block[b]["strongest"]] / by_block[b]["rmse"]["members"]
                         for b in blocks]  # fmt: skip
            ax.plot(range(len(blocks)), strongest, "--", color="0.4", label="strongest baseline")
            ax.set_title(f"{sp}, {fold}", fontsize=9)
            ax.set_xticks(range(len(blocks)), [hours(b) for b in blocks], fontsize=8)
        ax_row[0].set_ylabel("RMSE / members-only")
    for ax in axes[-1]:
        ax.set_xlabel("lead (h)")
    axes[0][0].legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_fold(args: argparse.Namespace, start: datetime, fold: str, workdir: Path) -> dict:
    """Ingest the fold's store, fit (or reuse) each variant, predict the test period with each, score them
    all in one `dlens-evaluate`; its rows, models and timings."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = str(workdir / "store.zarr")
    config = variant_config(args, start, "members")
    test_start = datetime.strptime(config["data"]["test"]["start"], "%Y-%m-%d")
    timings: dict[str, float] = {}
    print(f"\n== fold {fold}: training from {start:%Y-%m-%d}, test {config['data']['test']}", flush=True)
    ingest_fold(args, start, store, timings)
    models = {v: fit_config(variant_config(args, start, v), v, store, workdir, timings) for v in VARIANTS}
    test = ["--start", f"{test_start:%Y-%m-%d}", "--days", str(args.test_days)]
    report = workdir / "report"
    compare_to = [*BASELINES[1:], f"dlens-{models['members']}"]
    products, metrics = predict_and_score(store, models, test, report, timings, compare_to)
    return {
        "fold": fold, "start": f"{start:%Y-%m-%d}", "models": models,
        "periods": {k: config["data"][k] for k in ("train", "validation", "test")},
        "rows": ablation_rows(metrics, products, config["data"]["species"], fold),
        "timings_s": timings, "report": str(report / "index.html"),
    }  # fmt: skip


def print_summary(result: dict) -> None:
    print(
        f"\nGain of each family (1 − RMSE with / RMSE without, mean over {result['rows']} rows; per lead block):"
    )
    for family, f in result["families"].items():
        blocks = ", ".join(f"{hours(b)} h {g:+.1%}" for b, g in f["by_block"].items())
        print(f"  {family:<24} ({f['with']} vs {f['without']}): {f['mean_gain']:+.1%}   [{blocks}]")
    print("\nEach variant against the strongest baseline and against members-only (verdicts after Holm):")
    for variant, v in result["variants"].items():
        print(f"  {variant:<15} RMSE / strongest {v['mean_ratio_strongest']:.3f} (beats it in {v['beats_strongest_rows']}; "
              f"significantly better {v['better_than_strongest_rows_holm']}, worse {v['worse_than_strongest_rows_holm']}); "
              f"gain over members {v['mean_gain']:+.1%} (significantly better {v['better_than_members_rows_holm']}, "
              f"worse {v['worse_than_members_rows_holm']})")  # fmt: skip
    print("\nTargets:", ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    protocol_arguments(parser)
    parser.add_argument("--config", default="configs/train/skill.yaml", help="the model and optimiser")
    parser.add_argument("--json", type=Path, default=Path("bench/results/predictors.json"))
    args = parser.parse_args()
    starts = args.start[:1] if args.quick else args.start
    names = [fold_name(args, start) for start in starts]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dlens-predictors-"))
    started = time.perf_counter()
    folds = [run_fold(args, s, name, workdir / f"{s:%Y-%m-%d}") for s, name in zip(starts, names)]
    rows = [row for fold in folds for row in fold.pop("rows")]
    judge(rows)
    result = summary(rows)
    print(f"\n{markdown_table(rows)}")
    print_summary(result)
    timings = {fold["fold"]: fold["timings_s"] for fold in folds} | {
        "total": round(time.perf_counter() - started, 1)
    }
    print(f"timings (s): {timings}")
    passed = all(result["targets"].values())
    print("PASS" if passed else "FAIL")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "predictors", "date": f"{datetime.now():%Y-%m-%d %H:%M}", "command": shlex.join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "seed": args.seed, "domain": args.domain, "leads": LEADS, "variants": VARIANTS, "folds": folds,
        "rows": rows, "result": result, "passed": passed, "timings_s": timings,
    }, indent=1))  # fmt: skip
    figure = args.json.with_suffix(".png")
    plot(rows, figure)
    print(f"JSON: {args.json}; figure: {figure}; reports: {', '.join(fold['report'] for fold in folds)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
