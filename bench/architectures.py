"""Benchmark: the six architectures of the mission head to head (issue 20, item 3).

UNet, HalfUNet, DeepLabV3+, SegFormer, SwinUNETR and UNETR++ (through mfai), each at the size in `SIZES`
(parameters in the table), trained with the same budget (configs/train/skill.yaml's head, loss, optimiser
and epochs, only the backbone changed) on bench/skill.py's protocol: per fold a synthetic store, training,
validation and test periods separated by gaps, the test period a rolling origin of daily runs. Each model
predicts the test period through `dlens-train predict`; one `dlens-evaluate` per fold scores them all beside
the baselines (median, weighted, weighted per region, MOS, EMOS, persistence, climatology). Per architecture,
measured in this run on this machine:
  - parameters;
  - training samples/s: the training step (input assembly, forward, loss, backward, AdamW) on a batch of the
    fold's training samples already in memory, with the configured batch size;
  - inference on one full-grid field (MACCGE01 420 × 700, every species at one lead): seconds of the forward
    pass, and the peak memory it adds to the process's before it (VmHWM after a reset, in a fresh process; on
    a GPU, CUDA's peak allocation above the weights and inputs), the whole field at once (UNETR++, built for the training shape, on tiles of it); a full run
    (33 leads × 4 species) is 33 such passes;
  - RMSE per species × lead block, against the median and the strongest baseline of each row.
`--quick` (what a 2-core machine can do in about half an hour): one fold, 14 training days, 4 epochs, said so
in the output. Prints a table, writes JSON and a figure.

    uv run python bench/architectures.py --seed 23 --start 2026-06-01 [--quick] [--workdir DIR] [--gpu]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from predictors import fit_config, ingest_fold
from skill import (
    LEADS,
    fold_name,
    hours,
    predict_and_score,
    product_rows,
    protocol_arguments,
    training_config,
)

from dlens.model.architectures import SMALL_SETTINGS
from dlens.model.registry import load_model, resolve

#: The size of each architecture (mfai settings): the skill benchmark's HalfUNet, a UNet of similar cost,
#: and the reduced widths the tests build for the others.
SIZES: dict[str, dict] = {
    "HalfUNet": {"num_filters": 32},
    "UNet": {"init_features": 16},
    **{name: SMALL_SETTINGS[name] for name in ("DeepLabV3Plus", "Segformer", "SwinUNetR", "UNetRPP")},
}
FULL_GRID = (420, 700)
FULL_RUN_LEADS = 33


def architecture_config(args: argparse.Namespace, start: datetime, architecture: str) -> dict:
    """bench/skill.py's training config of the fold with the architecture's backbone at its size."""
    config = training_config(args, start)
    config["name"] = f"arch-{architecture.lower()}"
    config["model"]["architecture"] = architecture
    config["model"]["settings"] = SIZES[architecture]
    return config


def _status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), bytes."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(f"{field}:"))
    return int(line.split()[1]) * 1024


def _reset_peak() -> int:
    """Reset this process's peak resident set (VmHWM) to the current one, which it returns."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def full_grid_inference(config: dict, trained_shape: tuple[int, int], gpu: bool, queue) -> None:
    """In a fresh process: the forward pass of the config's model (untrained weights: the cost does not
    depend on them) on one full-grid field of random inputs, as predict runs it (`run_model`'s settings;
    tiles of the trained shape for a model built for one); puts seconds and peak bytes on `queue`."""
    import torch

    from dlens.model.inference import onednn
    from dlens.model.tiling import model_tiling, tiled_forward
    from dlens.train.config import TrainConfig
    from dlens.train.loop import input_channels, make_model

    try:
        train_config = TrainConfig.model_validate(config)
        model = make_model(train_config, trained_shape).eval()
        device = torch.device("cuda" if gpu else "cpu")
        model = model.to(device)
        fixed = trained_shape if config["model"]["architecture"] == "UNetRPP" else None
        tiling = model_tiling(fixed, FULL_GRID, None)
        inputs = torch.randn(1, len(input_channels(train_config)), *FULL_GRID, device=device)

        def forward() -> None:
            with torch.no_grad(), onednn(gpu), torch.autocast(device.type, torch.bfloat16, enabled=gpu):
                model(inputs) if tiling is None else tiled_forward(model, inputs, tiling)
            if gpu:
                torch.cuda.synchronize()

        if gpu:
            forward()  # warm-up (kernels chosen, memory pools)
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()  # the weights and the inputs
        else:
            before = _reset_peak()
        started = time.perf_counter()
        forward()
        seconds = time.perf_counter() - started
        peak = (torch.cuda.max_memory_allocated() if gpu else _status_bytes("VmHWM")) - before
        queue.put({"seconds": seconds, "peak_bytes": peak, "tiles": tiling is not None})
    except Exception as exc:  # reported in the table, not a crash of the benchmark
        queue.put({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})


def inference_cost(config: dict, trained_shape: tuple[int, int], gpu: bool, timeout_s: float = 900) -> dict:
    """`full_grid_inference` in a fresh process (spawned: its peak memory is this pass's alone)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=full_grid_inference, args=(config, trained_shape, gpu, queue))
    process.start()
    process.join(timeout_s)
    if process.is_alive():
        process.kill()
        return {"error": f"timed out after {timeout_s:.0f} s"}
    if process.exitcode != 0 and queue.empty():
        return {"error": f"the process died (exit code {process.exitcode}: out of memory?)"}
    return queue.get()


def training_rate(config: dict, store: str, gpu: bool, steps: int = 5) -> float:
    """Samples per second of training steps (bench/train_throughput.py's) on one batch of the fold's training
    split, already in memory."""
    import torch
    from torch.utils.data import DataLoader
    from train_throughput import step_rate

    from dlens.train.config import TrainConfig
    from dlens.train.dataset import StoreDataset, store_normaliser
    from dlens.train.predictor_stats import store_standardisation

    train_config = TrainConfig.model_validate(config)
    normaliser = store_normaliser(store, train_config.data.train)
    standardisation = store_standardisation(store, train_config.data.train, train_config.data.predictors)
    dataset = StoreDataset(store, train_config.data, "train", normaliser, standardisation, training=True)
    batch = next(
        iter(DataLoader(dataset, batch_size=train_config.optim.batch_size, collate_fn=dataset.collate))
    )
    device = torch.device("cuda" if gpu else "cpu")
    return step_rate(train_config, normaliser, dataset.shape, batch, device, steps)


def comparison_rows(metrics: dict, products: dict[str, str], species: list[str], fold: str) -> list[dict]:
    """Per species and lead block: RMSE of each architecture (`products`: architecture → product) and of each
    baseline, the strongest baseline, each architecture's ratio to the median and to the strongest."""
    rows = product_rows(metrics, products, species, fold)
    for row in rows:
        for key, reference in (("ratio_median", "median"), ("ratio_strongest", row["strongest"])):
            row[key] = {a: x / row["baselines"][reference] for a, x in row["rmse"].items()}
    return rows


def run_fold(args: argparse.Namespace, start: datetime, fold: str, workdir: Path) -> dict:
    """Ingest the fold's store, fit (or reuse) each architecture, measure its costs, predict the test period
    with each, score them all in one `dlens-evaluate`; the fold's rows, costs and timings."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = str(workdir / "store.zarr")
    timings: dict[str, float] = {}
    configs = {a: architecture_config(args, start, a) for a in args.architectures}
    first = next(iter(configs.values()))
    test_start = datetime.strptime(first["data"]["test"]["start"], "%Y-%m-%d")
    print(f"\n== fold {fold}: training from {start:%Y-%m-%d}, test {first['data']['test']}", flush=True)
    ingest_fold(args, start, store, timings)
    costs, models = {}, {}
    for architecture, config in configs.items():
        models[architecture] = fit_config(config, architecture, store, workdir, timings)
        entry = resolve(store, models[architecture])
        parameters = sum(p.numel() for p in load_model(store, entry).parameters())
        trained_shape = tuple(entry.card["input_shape"])
        costs[architecture] = {
            "settings": config["model"]["settings"],
            "parameters": parameters,
            "train_samples_s": training_rate(config, store, args.gpu),
            "full_grid_field": inference_cost(config, trained_shape, args.gpu),
        }
        print(f"{architecture}: {json.dumps(costs[architecture])}", flush=True)
    test = ["--start", f"{test_start:%Y-%m-%d}", "--days", str(args.test_days)]
    products, metrics = predict_and_score(store, models, test, workdir / "report", timings)
    return {
        "fold": fold, "start": f"{start:%Y-%m-%d}", "models": models, "costs": costs,
        "periods": {k: first["data"][k] for k in ("train", "validation", "test")},
        "rows": comparison_rows(metrics, products, first["data"]["species"], fold),
        "timings_s": timings, "report": str(workdir / "report" / "index.html"),
    }  # fmt: skip


def summary(rows: list[dict], costs: dict[str, dict]) -> list[dict]:
    """One line per architecture: its costs and its mean RMSE ratios to the median and the strongest baseline,
    and the rows where it beats them."""
    lines = []
    for architecture, cost in costs.items():
        field = cost["full_grid_field"]
        lines.append({
            "architecture": architecture, "parameters": cost["parameters"],
            "train_samples_s": cost["train_samples_s"],
            "field_s": field.get("seconds"), "run_s": None if "seconds" not in field else FULL_RUN_LEADS * field["seconds"],
            "field_peak_gb": None if "peak_bytes" not in field else field["peak_bytes"] / 1e9,
            "field_tiles": field.get("tiles"), "field_error": field.get("error"),
            "mean_ratio_median": float(np.mean([r["ratio_median"][architecture] for r in rows])),
            "mean_ratio_strongest": float(np.mean([r["ratio_strongest"][architecture] for r in rows])),
            "beats_median_rows": sum(r["ratio_median"][architecture] < 1 for r in rows),
            "beats_strongest_rows": sum(r["ratio_strongest"][architecture] < 1 for r in rows),
            "best_rows": sum(min(r["rmse"], key=r["rmse"].get) == architecture for r in rows),
        })  # fmt: skip
    return lines


def _number(value: float | None, form: str) -> str:
    return "–" if value is None else format(value, form)


def markdown_summary(lines: list[dict], rows: int, quick: bool) -> str:
    """The architectures table: size, costs and skill."""
    budget = " (--quick: one fold, 14 training days, 4 epochs)" if quick else ""
    out = [
        f"| architecture | parameters | training (samples/s) | full-grid field (s) | full run, 33 leads (s) "
        f"| peak memory, one field (GB) | RMSE / median{budget} | RMSE / strongest | beats the strongest (of {rows}) "
        "| best architecture (rows) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for x in lines:
        field = _number(x["field_s"], ".2f") + (" (tiles)" if x["field_tiles"] else "")
        if x["field_error"]:
            field = f"failed: {x['field_error']}"
        out.append(
            f"| {x['architecture']} | {x['parameters']:,} | {x['train_samples_s']:.1f} | {field} "
            f"| {_number(x['run_s'], '.0f')} | {_number(x['field_peak_gb'], '.2f')} | {x['mean_ratio_median']:.3f} "
            f"| {x['mean_ratio_strongest']:.3f} | {x['beats_strongest_rows']} | {x['best_rows']} |"
        )
    return "\n".join(out)


def markdown_rows(rows: list[dict], architectures: list[str]) -> str:
    """RMSE per fold, species and lead block: every architecture, the median and the strongest baseline."""
    out = [
        f"| fold | species | leads (h) | {' | '.join(architectures)} | median | strongest baseline |",
        "| --- | --- | --- |" + " ---: |" * (len(architectures) + 2),
    ]
    for r in rows:
        values = [r["rmse"][a] for a in architectures]
        best = min([*values, r["baselines"][r["strongest"]]])
        cells = [f"**{v:.2f}**" if v == best else f"{v:.2f}" for v in values]
        strongest = r["baselines"][r["strongest"]]
        out.append(
            f"| {r['fold']} | {r['species']} | {hours(r['lead_block'])} | {' | '.join(cells)} "
            f"| {r['baselines']['median']:.2f} | {r['strongest']} {'**' if strongest == best else ''}"
            f"{strongest:.2f}{'**' if strongest == best else ''} |"
        )
    return "\n".join(out)


def plot(lines: list[dict], path: Path) -> None:
    """RMSE / strongest baseline against inference time per full-grid field, one point per architecture
    (marker size: parameters)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    for k, x in enumerate(lines):
        if x["field_s"] is None:
            continue
        size = 20 + 200 * np.sqrt(x["parameters"] / max(y["parameters"] for y in lines))
        ax.scatter(x["field_s"], x["mean_ratio_strongest"], s=size, color=f"C{k}", label=x["architecture"])
        ax.annotate(x["architecture"], (x["field_s"], x["mean_ratio_strongest"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")  # fmt: skip
    ax.axhline(1.0, color="0.5", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("inference, one full-grid field (s, log scale)")
    ax.set_ylabel("mean RMSE / strongest baseline")
    ax.set_title("Architectures: skill against inference cost (marker: parameters)", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    protocol_arguments(parser, quick="one fold, 14 training days, 4 epochs")
    parser.add_argument("--architectures", default=",".join(SIZES), help="comma-separated (default all six)")
    parser.add_argument("--config", default="configs/train/skill.yaml", help="head, loss, optimiser, budget")
    parser.add_argument("--gpu", action="store_true", help="time training steps and inference on the GPU")
    parser.add_argument("--json", type=Path, default=Path("bench/results/architectures.json"))
    args = parser.parse_args()
    args.architectures = [a for a in args.architectures.split(",") if a]
    unknown = sorted(set(args.architectures) - set(SIZES))
    if unknown:
        parser.error(f"unknown architecture(s) {', '.join(unknown)}; known: {', '.join(SIZES)}")
    if args.quick:
        args.train_days, args.epochs = 14, args.epochs or 4
    starts = args.start[:1] if args.quick else args.start
    names = [fold_name(args, start) for start in starts]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dlens-architectures-"))
    started = time.perf_counter()
    folds = [run_fold(args, s, name, workdir / f"{s:%Y-%m-%d}") for s, name in zip(starts, names)]
    rows = [row for fold in folds for row in fold.pop("rows")]
    lines = summary(rows, folds[0]["costs"])
    print(f"\n{markdown_summary(lines, len(rows), args.quick)}\n\n{markdown_rows(rows, args.architectures)}")
    timings = {fold["fold"]: fold["timings_s"] for fold in folds} | {
        "total": round(time.perf_counter() - started, 1)
    }
    print(f"timings (s): {timings}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "architectures", "date": f"{datetime.now():%Y-%m-%d %H:%M}", "command": shlex.join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "device": "cuda" if args.gpu else "cpu"},
        "quick": args.quick, "seed": args.seed, "domain": args.domain, "leads": LEADS, "sizes": SIZES,
        "folds": folds, "rows": rows, "summary": lines, "timings_s": timings,
    }, indent=1))  # fmt: skip
    figure = args.json.with_suffix(".png")
    plot(lines, figure)
    print(f"JSON: {args.json}; figure: {figure}; reports: {', '.join(fold['report'] for fold in folds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
