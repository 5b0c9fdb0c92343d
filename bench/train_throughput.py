"""Benchmark: training throughput, the data loader alone against the training step, in samples per second.

Measured in one run, on this machine, over one synthetic store (the demo domain by default, built first
or reused), with the training config given (default configs/train/demo.yaml, every species):
  1. the data loader alone: the training split through the DataLoader that `dlens-train fit` builds
     (its worker processes, batch size, member dropout), batches consumed and dropped, timed after a
     first epoch that starts the workers;
  2. the training step alone: input assembly (presence, median, spread: done where the model runs),
     forward, the training loss, backward and AdamW on batches already in memory
     (bf16 autocast on a GPU, as in training), for the configured model and for each architecture with
     mfai's default settings;
  3. the ratio loader / step: the loader must deliver at least twice what a step consumes (target).
With --gpu (on a CUDA machine) the steps run on the GPU; `--domain full` builds a full-grid store. A config
that trains on patches (configs/train/patches.yaml, on a full-grid store) counts patches: each sample read
gives `per_sample` of them, and a step trains on batch_size × per_sample.

    uv run python bench/train_throughput.py [--domain demo] [--architectures HalfUNet,UNet] [--gpu]
        [--reuse-store PATH] [--json bench/results/train_throughput.json]
    uv run python bench/train_throughput.py --domain full --config configs/train/patches.yaml \
        --json bench/results/train_throughput-patches.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dlens.train.config import load_config
from dlens.train.dataset import StoreDataset, store_normaliser
from dlens.train.loop import loader_options, make_model, train_step
from dlens.train.objective import Objective
from dlens.train.predictor_stats import store_standardisation

TARGET = 2.0
BIN = Path(sys.executable).parent


def build_store(path: Path, domain: str, days: int, leads: str) -> str:
    """A synthetic store for the benchmark, through the ingest console script."""
    command = [str(BIN / "dlens-ingest"), "--no-progress", "synthetic", "--store", str(path), "--start", "2025-07-01",
               "--days", str(days), "--domain", domain, "--leads", leads, "--seed", "0"]  # fmt: skip
    print(f"$ {shlex.join(command)}", flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return str(path)


def loader_rate(dataset: StoreDataset, batch_size: int, workers: int, batches: int) -> float:
    """Samples (patches, where the dataset cuts them) per second through the training DataLoader, after a first
    epoch that starts its workers."""
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=dataset.collate,
        **loader_options(workers),
    )  # fmt: skip
    for _ in loader:  # warm-up: every worker process started, imported and opened the store
        pass
    seen, samples, started = 0, 0, time.perf_counter()
    while seen < batches:
        for batch in loader:
            seen, samples = seen + 1, samples + len(batch["members"])
            if seen == batches:
                break
    return samples / (time.perf_counter() - started)


def step_rate(config, normaliser, shape, batch: dict, device: torch.device, steps: int) -> float:
    """Samples per second of training steps on batches already in memory (on `device`)."""
    model = make_model(config, shape).to(device)
    objective = Objective(config.optim.loss, normaliser, config.data.species, device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = {k: v.to(device) for k, v in batch.items()}
    autocast = device.type == "cuda"

    for _ in range(3):  # warm-up
        train_step(model, optimiser, objective, batch, autocast)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimiser, objective, batch, autocast)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * len(batch["members"]) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--domain", default="demo", help="domain of a new store (default demo; 'full' with --gpu)"
    )
    parser.add_argument("--days", type=int, default=6, help="days in a new store (default 6)")
    parser.add_argument("--leads", default="0:96:3")
    parser.add_argument("--config", default="configs/train/demo.yaml")
    parser.add_argument("--architectures", default="HalfUNet,UNet")
    parser.add_argument("--batches", type=int, default=60, help="batches timed per measurement (default 60)")
    parser.add_argument("--gpu", action="store_true", help="time the steps on the GPU")
    parser.add_argument(
        "--reuse-store", type=Path, metavar="PATH", help="a store with runs from 2025-07-01 to 07-06"
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/train_throughput.json"))
    args = parser.parse_args()

    if args.reuse_store:
        return measure(args, str(args.reuse_store))
    with tempfile.TemporaryDirectory(prefix="dlens-throughput-") as folder:
        return measure(args, build_store(Path(folder) / "store.zarr", args.domain, args.days, args.leads))


def measure(args: argparse.Namespace, url: str) -> int:
    """Time the loader and the steps over the store at `url`, print the table and write the JSON."""
    base = load_config(args.config)
    raw = base.model_dump(mode="json")
    raw["data"]["train"] = {"start": "2025-07-01", "end": "2025-07-04"}
    raw["data"]["validation"] = {"start": "2025-07-05", "end": "2025-07-05"}
    raw["data"]["test"] = {"start": "2025-07-06", "end": "2025-07-06"}
    config = base.model_validate(raw)
    try:
        normaliser = store_normaliser(url)
        standardisation = store_standardisation(url, config.data.train, config.data.predictors)
        dataset = StoreDataset(url, config.data, "train", normaliser, standardisation, training=True)
    except ValueError as error:  # e.g. a reused store without runs from 2025-07-01 to 07-04
        print(f"error: {error}", file=sys.stderr)
        return 2
    batch_size, workers = config.optim.batch_size, config.data.loader_workers
    device = torch.device("cuda" if args.gpu else "cpu")
    patches = config.data.patches
    per_step = f"{batch_size} × {patches.per_sample} patches" if patches else f"{batch_size}"
    print(f"store {url}: {len(dataset)} training samples of {dataset.domain_shape}, trained on {dataset.shape}, batch {per_step}, "
          f"{workers} loader workers, {torch.get_num_threads()} torch threads, device {device}", flush=True)  # fmt: skip

    loader = loader_rate(dataset, batch_size, workers, args.batches)
    sample = next(iter(DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collate)))
    sample.pop("origin", None)
    # The configured model, then each architecture with mfai's default settings.
    models = [(f"{config.model.architecture} {config.model.settings}", raw["model"])]
    models += [
        (name, {**raw["model"], "architecture": name, "settings": {}})
        for name in args.architectures.split(",")
    ]
    rows = []
    for label, model in models:
        steps = step_rate(base.model_validate({**raw, "model": model}), normaliser, dataset.shape, sample, device,
                          args.batches)  # fmt: skip
        rows.append({"model": label, "loader_samples_s": loader, "step_samples_s": steps,
                     "ratio": loader / steps, "target": TARGET, "met": loader / steps >= TARGET})  # fmt: skip

    header = f"{'model':<30} {'loader (samples/s)':>19} {'step (samples/s)':>17} {'loader/step':>12}  target ≥ {TARGET}"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['model']:<30} {r['loader_samples_s']:19.1f} {r['step_samples_s']:17.1f} "
              f"{r['ratio']:12.2f}  {'met' if r['met'] else 'MISSED'}")  # fmt: skip
    passed = all(r["met"] for r in rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "train_throughput", "date": f"{datetime.now():%Y-%m-%d %H:%M}", "command": shlex.join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "device": str(device),
                    "gpu": torch.cuda.get_device_name() if args.gpu else None},
        "store": url, "shape": list(dataset.domain_shape), "trained_shape": list(dataset.shape), "samples": len(dataset),
        "batch_size": batch_size, "patches_per_sample": patches.per_sample if patches else None,
        "loader_workers": workers, "rows": rows, "passed": passed,
    }, indent=1))  # fmt: skip
    print(("PASS" if passed else "FAIL") + f"; JSON: {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
