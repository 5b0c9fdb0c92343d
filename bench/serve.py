"""Benchmark: the serve endpoint against the same model called in-process, on a demo-domain field.

Measured in one run, on this machine: a synthetic demo-domain store is built (or reused), a model of the
demo configuration (configs/train/demo.yaml, randomly initialised: latency does not depend on the weights)
is registered, and the Serve application is started on a local Ray. Then:
  1. in-process: `dlens.model.inference.ensemble` on one sample, with the replica's thread count
     (the replica has 1 CPU);
  2. over HTTP: POST /v1/ensemble (JSON, the o3 members of one run and lead, 11 members × 64 × 96) from
     1, 8 and 32 concurrent clients, with dynamic batching (max_batch_size 16) and without (1);
     latency p50 / p95 / p99 and throughput, every response checked (status 200, a 64 × 96 field).
Targets: p50 overhead over in-process at 1 client ≤ 15 ms; batched throughput at 32 clients ≥ 1.5 × unbatched;
no failed request over at least 2000.

    uv run python bench/serve.py [--requests 400] [--reuse-store PATH] [--json bench/results/serve.json]
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
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import torch

from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.model.inference import ensemble
from dlens.model.registry import load_model, resolve
from dlens.model.static import static_fields
from dlens.testing.plugin import free_port
from dlens.train.config import load_config
from dlens.train.dataset import store_normaliser
from dlens.train.loop import make_model
from dlens.train.predictor_stats import store_standardisation
from dlens.train.registry import publish

OVERHEAD_TARGET_MS = 15.0
BATCHING_TARGET = 1.5
MIN_REQUESTS = 2000
CLIENTS = (1, 8, 32)
RUN, LEAD = np.datetime64("2025-07-02T00", "h"), 12
BIN = Path(sys.executable).parent


def build_store(path: Path) -> str:
    command = [str(BIN / "dlens-ingest"), "--no-progress", "synthetic", "--store", str(path), "--start", "2025-07-01",
               "--days", "2", "--domain", "demo", "--leads", "0:24:6", "--seed", "0"]  # fmt: skip
    print(f"$ {shlex.join(command)}", flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return str(path)


def register_model(url: str) -> str:
    config = load_config(Path("configs/train/demo.yaml"))
    shape = StoreReader(url).spec.domain.shape
    torch.manual_seed(0)
    model = make_model(config, shape)
    standardisation = store_standardisation(url, config.data.train, config.data.predictors)
    scores = {"val_ratio": float("nan")}
    return publish(url, config, store_normaliser(url), standardisation, model.state_dict(), shape, scores)


def in_process_ms(url: str, model_id: str, members: np.ndarray, repeats: int = 200) -> dict:
    """Latency of the prediction alone, in this process, one thread (as in the replica)."""
    torch.set_num_threads(1)
    entry = resolve(url, model_id)
    model, static = load_model(url, entry), static_fields(StoreReader(url), entry.static_names)
    sample = np.full((len(entry.species), len(MEMBERS), *members.shape[1:]), np.nan, dtype=np.float32)
    sample[entry.species.index("o3")] = members
    times = []
    for i in range(repeats + 10):
        start = time.perf_counter()
        ensemble(model, entry, sample[None], static, [LEAD], [RUN + np.timedelta64(LEAD, "h")])
        if i >= 10:
            times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}


def load(base: str, body: bytes, clients: int, requests: int, shape: tuple[int, int]) -> dict:
    """`requests` POSTs spread over `clients` threads; latency percentiles, throughput, failures."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]

    def client(count: int) -> None:
        with httpx.Client(base_url=base, timeout=120, headers={"content-type": "application/json"}) as http:
            for _ in range(count):
                start = time.perf_counter()
                try:
                    response = http.post("/v1/ensemble", content=body)
                    elapsed_ms = (time.perf_counter() - start) * 1000  # the answer received; checked after
                    ok = response.status_code == 200 and len(response.json()["dlens"]) == shape[0]
                    problem = None if ok else f"{response.status_code}: {response.text[:120]}"
                except httpx.HTTPError as exc:
                    problem, elapsed_ms = repr(exc), (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed_ms)
                    if problem:
                        failures.append(problem)

    threads = [threading.Thread(target=client, args=(n,)) for n in per_client]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "clients": clients, "requests": len(latencies), "failed": len(failures), "first_failures": failures[:3],
        "p50_ms": float(np.percentile(latencies, 50)), "p95_ms": float(np.percentile(latencies, 95)),
        "p99_ms": float(np.percentile(latencies, 99)), "throughput_rps": len(latencies) / elapsed,
    }  # fmt: skip


def serve_rows(
    url: str, model_id: str, body: bytes, shape: tuple[int, int], requests: int
) -> tuple[list[dict], float]:
    import ray
    from ray import serve

    from dlens.serve.app import APP_NAME, build_app
    from dlens.serve.args import ServeArgs

    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"enable_access_log": False})
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        for batch in (1, 16):
            # On loopback, without a token: anonymous access asked for, as dlens-serve run does there.
            args = ServeArgs(store=url, model=model_id, max_batch_size=batch, allow_anonymous=True)
            serve.run(build_app(args), name=APP_NAME, route_prefix="/", blocking=False)
            load(base, body, 4, 40, shape)  # warm-up: model loaded, connections open
            if batch == 1:
                round_trip = healthz_ms(base)
            for clients in CLIENTS:
                row = {
                    "batching": batch > 1,
                    "max_batch_size": batch,
                    **load(base, body, clients, requests, shape),
                }
                print(f"  batch {batch:>2}, {clients:>2} clients: p50 {row['p50_ms']:.1f} ms, "
                      f"{row['throughput_rps']:.1f} req/s, {row['failed']} failed", flush=True)  # fmt: skip
                rows.append(row)
            stats = serve.get_deployment_handle("DLENS", APP_NAME).stats.remote().result()
            print(f"  batch sizes run by the replica ({stats['threads']} torch thread): "
                  f"{dict(sorted(stats['batch_sizes'].items()))}", flush=True)  # fmt: skip
            rows[-1]["batch_sizes"] = stats["batch_sizes"]
            serve.delete(APP_NAME)
    finally:
        serve.shutdown()
        ray.shutdown()
    return rows, round_trip


def healthz_ms(base: str, repeats: int = 200) -> float:
    """p50 of GET /healthz from one client: the HTTP and Serve round trip without a body or a model."""
    with httpx.Client(base_url=base) as http:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            http.get("/healthz").raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per (batching, clients) cell")
    parser.add_argument(
        "--reuse-store", type=Path, metavar="PATH", help="a demo-domain store with run 2025-07-02"
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/serve.json"))
    args = parser.parse_args()
    if args.reuse_store:
        return measure(args, str(args.reuse_store.resolve()))
    with tempfile.TemporaryDirectory(prefix="dlens-serve-bench-") as folder:
        return measure(args, build_store(Path(folder) / "store.zarr"))


def measure(args: argparse.Namespace, url: str) -> int:
    model_id = register_model(url)
    members = StoreReader(url).members("o3", RUN, LEAD)[:, 0]
    shape = members.shape[1:]
    fields = {
        m: np.round(members[i].astype(np.float64), 2).tolist()
        for i, m in enumerate(MEMBERS)
        if np.isfinite(members[i]).all()
    }
    body = json.dumps({"species": "o3", "run": f"{RUN}:00", "lead": LEAD, "members": fields}).encode()
    print(
        f"model {model_id}, field {shape[0]}×{shape[1]}, {len(fields)} members, body {len(body) / 1e3:.0f} kB",
        flush=True,
    )

    baseline = in_process_ms(url, model_id, members)
    rows, round_trip = serve_rows(url, model_id, body, shape, args.requests)
    for row in rows:
        row["overhead_p50_ms"] = row["p50_ms"] - baseline["p50_ms"]
        row["ratio_p50"] = row["p50_ms"] / baseline["p50_ms"]

    single = next(r for r in rows if r["clients"] == 1 and not r["batching"])
    unbatched = next(r for r in rows if r["clients"] == 32 and not r["batching"])
    batched = next(r for r in rows if r["clients"] == 32 and r["batching"])
    total, failed = sum(r["requests"] for r in rows), sum(r["failed"] for r in rows)
    checks = {
        "p50 overhead at 1 client (ms)": (single["overhead_p50_ms"], f"≤ {OVERHEAD_TARGET_MS}", single["overhead_p50_ms"] <= OVERHEAD_TARGET_MS),
        "batched / unbatched throughput at 32 clients": (batched["throughput_rps"] / unbatched["throughput_rps"], f"≥ {BATCHING_TARGET}",
                                                          batched["throughput_rps"] / unbatched["throughput_rps"] >= BATCHING_TARGET),
        "failed requests": (failed, f"0 of ≥ {MIN_REQUESTS}", failed == 0 and total >= MIN_REQUESTS),
    }  # fmt: skip

    print(f"\nin-process prediction: p50 {baseline['p50_ms']:.1f} ms, p95 {baseline['p95_ms']:.1f} ms (1 thread); "
          f"GET /healthz round trip p50 {round_trip:.1f} ms")  # fmt: skip
    header = f"{'batching':<9} {'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'overhead p50':>13} {'× in-proc':>10} {'failed':>7}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{'yes' if r['batching'] else 'no':<9} {r['clients']:>7} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p99_ms']:8.1f} "
              f"{r['throughput_rps']:8.1f} {r['overhead_p50_ms']:10.1f} ms {r['ratio_p50']:10.2f} {r['failed']:>7}")  # fmt: skip
    print()
    for name, (value, target, met) in checks.items():
        print(f"{name:<46} {value:10.2f}  target {target:<14} {'met' if met else 'MISSED'}")
    passed = all(met for _, _, met in checks.values())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "serve", "date": f"{datetime.now():%Y-%m-%d %H:%M}", "command": shlex.join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "model": model_id, "field": list(shape), "body_bytes": len(body), "in_process": baseline, "healthz_p50_ms": round_trip, "rows": rows,
        "checks": {k: {"value": v, "target": t, "met": m} for k, (v, t, m) in checks.items()}, "passed": passed,
    }, indent=1))  # fmt: skip
    print(("PASS" if passed else "FAIL") + f"; {total} requests; JSON: {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
