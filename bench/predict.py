"""Benchmark: the cost of one full operational run through `dlens-train predict` (issue 20, item 4).

One run of a full-grid store (MACCGE01 420 × 700; built first with one synthetic day, or --reuse-store),
every lead of the store (0–96 h every 3 h: 33) × 4 species, all 11 members read from the store, predicted by
`dlens-train predict` (`dlens.train.predict.predict`: one Ray task per run) with the model of --config
(default configs/train/demo.yaml: HalfUNet, 16 filters) registered with untrained weights: the cost does
not depend on them (--model ID times a model the store already has). Two Ray workers are started and import
the prediction code first (timed apart: paid once per process). Then, measured in one run on this machine:
  1. the bare forward passes of the fields predict makes: in a Ray worker with the resources of predict's
     task (one CPU, so as many torch threads), which exits after them; each batch of leads
     (`leads_per_batch`) read and assembled untimed, then only the model's forward passes timed, with
     inference's kernel settings;
  2. predict: its wall time (the Ray task, the store reads, input assembly, the forward passes, the writes
     and the commit), and the peak RSS (VmHWM) of the Ray worker that ran it;
  3. predict / forward: target ≤ 1.3 on the CPU; peak RSS ≤ 8 GB.
Predict's task asks Ray for one CPU but runs two threads (the model, and the reading of the next lead), so
the CPU time of both is reported beside the wall time. The inference settings are predict's
(DLENS_INFERENCE_TILE / _OVERLAP, default the whole field; DLENS_INFERENCE_BATCH_CELLS). Needs a local Ray
(RAY_ADDRESS unset) and Linux (CPU time and peak RSS from /proc). A reused store keeps the product
`bench-predict-<time>` it wrote. Prints a table, writes JSON.

    uv run python bench/predict.py [--config configs/train/demo.yaml] [--reuse-store PATH [--model ID]]
        [--json bench/results/predict.json]
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

import numpy as np
import ray
import torch

from dlens.common.config import get_settings
from dlens.common.parallel import ensure_ray
from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.model.features import level_positions
from dlens.model.inference import onednn
from dlens.model.registry import load_model, resolve
from dlens.model.static import static_fields
from dlens.model.tiling import Tiling, configured_tiling, model_tiling, tiled_forward
from dlens.train.config import load_config
from dlens.train.dataset import store_normaliser
from dlens.train.loop import make_model
from dlens.train.predict import lead_inputs, leads_per_batch, predict, usable
from dlens.train.predictor_stats import store_standardisation
from dlens.train.registry import publish

RATIO_TARGET = 1.3
RSS_TARGET_GB = 8.0
BIN = Path(sys.executable).parent


def build_store(path: Path, domain: str) -> str:
    """A store with one synthetic day (run 2025-07-01, leads 0–96 h every 3 h), through the ingest console
    script."""
    command = [str(BIN / "dlens-ingest"), "--no-progress", "synthetic", "--store", str(path), "--start", "2025-07-01",
               "--days", "1", "--domain", domain, "--leads", "0:96:3", "--seed", "0"]  # fmt: skip
    print(f"$ {shlex.join(command)}", flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return str(path)


def untrained_model(url: str, config_path: Path) -> str:
    """The model of `config_path` with seeded, untrained weights, published to the store's registry."""
    config = load_config(config_path)
    shape = StoreReader(url).spec.domain.shape
    standardisation = store_standardisation(url, config.data.train, config.data.predictors)
    torch.manual_seed(0)
    weights = make_model(config, shape).state_dict()
    return publish(url, config, store_normaliser(url), standardisation, weights, shape, {})


def parent(pid: int) -> int:
    """The parent process id of `pid` (0 once it has ended)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def peak_rss_of_ray_workers(driver: int) -> dict[int, int]:
    """VmHWM (bytes) by pid of the live Ray workers of the local Ray that process `driver` started (its
    raylet's children: not those of another Ray on the machine)."""
    peaks = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        pid = int(status.parent.name)
        try:
            if (
                not (status.parent / "cmdline").read_bytes().startswith(b"ray::")
                or parent(parent(pid)) != driver
            ):
                continue
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
            peaks[pid] = int(line.split()[1]) * 1024
        except (OSError, StopIteration):  # the process ended meanwhile
            continue
    return peaks


def start_worker() -> float:
    """Seconds to import the prediction code in a fresh worker (paid once per process: a long-running
    operational process pays it once, a `dlens-train predict` command once per call)."""
    started = time.perf_counter()
    import dlens.train.predict  # noqa: F401  (the import is what is timed)

    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (0 once it has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_forward(
    url: str, model_id: str, run: str, driver: int, per_batch: int, tiling: Tiling | None
) -> dict:
    """Seconds (wall and CPU) of the model's forward passes alone over every lead of `run` (inputs assembled
    beforehand, untimed), in predict's batches and tiling; with the worker's torch threads and peak RSS."""
    reader = StoreReader(url)
    entry = resolve(url, model_id)
    model = load_model(url, entry)
    t0 = np.datetime64(run, "h")
    static = static_fields(reader, entry.static_names)
    leads = [lead for lead in reader.spec.leads if entry.leads is None or lead in entry.leads]
    positions = level_positions(entry.levels, reader.spec.levels)
    used = {sp: usable(reader, sp, t0, MEMBERS) for sp in entry.species}  # as predict: every member present
    seconds, cpu, fields = 0.0, 0.0, 0
    for start in range(0, len(leads), per_batch):
        batch = leads[start : start + per_batch]
        inputs = lead_inputs(reader, entry, t0, batch, positions, used, static, None, "cpu")
        tiles = model_tiling(entry.fixed_shape, inputs.shape[-2:], tiling)
        with torch.no_grad(), onednn(enabled=False):
            started, cpu_started = time.perf_counter(), time.process_time()
            out = model(inputs) if tiles is None else tiled_forward(model, inputs, tiles)
            seconds += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
        fields += out.shape[0] * out.shape[1]
        del inputs, out
    return {"seconds": seconds, "cpu_seconds": cpu, "fields": fields, "threads": torch.get_num_threads(),
            "pid": os.getpid(), "peak_rss": peak_rss_of_ray_workers(driver).get(os.getpid())}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/train/demo.yaml"))
    parser.add_argument("--domain", default="full", help="domain of a new store (default full: 420 × 700)")
    parser.add_argument("--reuse-store", type=Path, metavar="PATH", help="a store with a complete run")
    parser.add_argument("--model", help="a model of the reused store (default: --config, untrained)")
    parser.add_argument("--run", help="the run to predict (default the store's first complete run)")
    parser.add_argument("--json", type=Path, default=Path("bench/results/predict.json"))
    args = parser.parse_args()
    if args.model and not args.reuse_store:
        parser.error("--model needs --reuse-store")
    if args.reuse_store:
        return measure(args, str(args.reuse_store))
    with tempfile.TemporaryDirectory(prefix="dlens-predict-") as folder:
        return measure(args, build_store(Path(folder) / "store.zarr", args.domain))


def measure(args: argparse.Namespace, url: str) -> int:
    """Time predict and the bare forward passes of one run, print the table and write the JSON."""
    reader = StoreReader(url)
    run = args.run or str(reader.complete_runs()[0])
    model_id = args.model or untrained_model(url, args.config)
    entry = resolve(url, model_id)
    parameters = sum(p.numel() for p in load_model(url, entry).parameters())
    shape = reader.spec.domain.shape
    print(f"store {url}: run {run}, {shape[0]} × {shape[1]}, model {model_id} ({entry.card['architecture']}, "
          f"{parameters:,} parameters)", flush=True)  # fmt: skip
    if not ensure_ray():
        print("error: the benchmark measures the workers of a local Ray it starts: unset RAY_ADDRESS",
              file=sys.stderr)  # fmt: skip
        return 2
    driver = os.getpid()
    settings = get_settings()
    tiling = configured_tiling(settings.inference_tile, settings.inference_overlap)
    per_batch = leads_per_batch(shape, settings.inference_batch_cells)
    # workers started, with the prediction code imported, before the clock (timed apart)
    imports = max(ray.get([ray.remote(num_cpus=1)(start_worker).remote() for _ in range(2)]))
    # the bare forward passes first, in a worker that exits after them (max_calls=1), so that the worker
    # predict runs in has only imported the code before: its peak RSS is predict's
    forward = ray.get(
        ray.remote(num_cpus=1, max_calls=1)(bare_forward).remote(
            url, model_id, run, driver, per_batch, tiling
        )
    )
    before = {pid: cpu_seconds(pid) for pid in peak_rss_of_ray_workers(driver)}
    product = f"bench-predict-{datetime.now():%H%M%S}"
    started = time.perf_counter()
    _, done, report = predict(url, model_id, [np.datetime64(run, "h")], product=product)
    predict_s = time.perf_counter() - started
    if report.failed or not done:
        print(f"error: predict failed: {report.failed}", file=sys.stderr)
        return 2
    peaks = {pid: peak for pid, peak in peak_rss_of_ray_workers(driver).items() if pid != forward["pid"]}
    predict_rss = max(peaks.values())  # the worker that ran the run's task (the others are idle)
    new_workers = sorted(set(peaks) - set(before))
    # the CPU time of the worker that ran predict: the one that used most since before
    predict_cpu = max(cpu_seconds(pid) - before.get(pid, 0.0) for pid in peaks)
    fields = forward["fields"]
    written = reader.product(product, entry.species[0], np.datetime64(run, "h"), reader.spec.leads[-1])
    assert written is not None and np.isfinite(written).all(), "predict wrote no finite field"
    ratio = predict_s / forward["seconds"]
    rows = [
        {"step": "predict (one run, through dlens-train predict)", "seconds": predict_s, "cpu_seconds": predict_cpu,
         "per_field_ms": 1000 * predict_s / fields, "peak_rss_gb": predict_rss / 1e9},
        {"step": "bare forward passes of the same fields", "seconds": forward["seconds"],
         "cpu_seconds": forward["cpu_seconds"], "per_field_ms": 1000 * forward["seconds"] / fields,
         "peak_rss_gb": (forward["peak_rss"] or 0) / 1e9},
    ]  # fmt: skip
    header = f"{'step':<48} {'seconds':>9} {'CPU seconds':>12} {'ms / field':>11} {'peak RSS (GB)':>14}"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['step']:<48} {r['seconds']:9.1f} {r['cpu_seconds']:12.1f} {r['per_field_ms']:11.0f} "
              f"{r['peak_rss_gb']:14.2f}")  # fmt: skip
    met_ratio, met_rss = ratio <= RATIO_TARGET, predict_rss / 1e9 <= RSS_TARGET_GB
    print(
        f"\n{fields} fields ({len(entry.species)} species × {fields // len(entry.species)} leads), "
        f"{forward['threads']} torch thread(s) in each task, and in predict's a second thread reading the next "
        f"lead: CPU time {predict_cpu / forward['cpu_seconds']:.2f} × the forward passes'; before both, a fresh "
        f"worker took {imports:.1f} s to import the prediction code (once per process)"
    )
    print(
        f"predict / forward: {ratio:.2f} (target ≤ {RATIO_TARGET}: {'met' if met_ratio else 'MISSED'}); "
        f"peak RSS {predict_rss / 1e9:.2f} GB (target ≤ {RSS_TARGET_GB}: {'met' if met_rss else 'MISSED'})"
    )
    passed = met_ratio and met_rss
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "predict", "date": f"{datetime.now():%Y-%m-%d %H:%M}", "command": shlex.join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "device": "cpu"},
        "store": url, "shape": list(shape), "run": run, "model": model_id, "architecture": entry.card["architecture"],
        "parameters": parameters, "fields": fields, "threads": forward["threads"], "worker_import_seconds": imports,
        "tiling": {"tile": settings.inference_tile, "overlap": settings.inference_overlap}, "leads_per_pass": per_batch,
        "rows": rows, "ratio": ratio, "cpu_ratio": predict_cpu / forward["cpu_seconds"], "ratio_target": RATIO_TARGET, "peak_rss_target_gb": RSS_TARGET_GB,
        "ray_workers_started_by_predict": len(new_workers), "passed": passed,
    }, indent=1))  # fmt: skip
    print(("PASS" if passed else "FAIL") + f"; JSON: {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
