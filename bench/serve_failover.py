"""Benchmark: the serve endpoint under load while one of its two replicas is killed, then replaced.

Measured in one run, on this machine: a synthetic demo-domain store is built (or reused with --workdir), a
model of the demo configuration (configs/train/demo.yaml, randomly initialised: failover does not depend on
the weights) is registered, and the Serve application is started on a local Ray with two replicas
(ServeArgs.num_replicas). Then --requests POSTs of /v1/ensemble (JSON, the o3 members of one run and lead,
10 members × 64 × 96) go out from --clients concurrent clients (threads, one connection and one request
outstanding each); once a third of them have been answered, one replica's actor is killed
(`ray.kill`, no restart: Serve's controller must notice and start a replacement). Every answer is checked
(status 200, a 64 × 96 field). Requests fall in three phases: before the kill (answered before it), the
outage (the rest of those started before Serve reports two running replicas again, the killed one not among
them) and after recovery. Reported: failures by phase and by status, latency p50 / p95 / p99 per phase as
ratios to the before phase, and the time to recovery.

Targets: failed requests ≤ --clients (the bound: each client has one request outstanding, so at most that
many are in flight on the killed replica when it dies; a request routed after the kill cannot land there,
since Serve's router reserves a slot on a replica before sending and retries elsewhere when the replica is
dead); none before the kill; none after recovery. The run goes on past --requests, if need be, until
Serve has recovered and min_after(--requests) requests started since have been answered (the recovery
takes 15-30 s on the 2-core development machine: longer than a --quick run's count).

    uv run python bench/serve_failover.py [--requests 2000] [--clients 8] [--quick] [--workdir DIR] \\
        [--json bench/results/serve_failover.json]
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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import torch

from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.model.registry import entries
from dlens.testing.plugin import free_port
from dlens.train.config import load_config
from dlens.train.dataset import store_normaliser
from dlens.train.loop import make_model
from dlens.train.predictor_stats import store_standardisation
from dlens.train.registry import publish

REPLICAS = 2
KILL_AFTER = 1 / 3  # of the requests answered
MIN_AFTER, MIN_AFTER_FRACTION = 100, 0.15  # requests after recovery, at least: to say "none failed after"
QUICK = 300
RECOVERY_TIMEOUT_S = 180.0
RUN, LEAD = np.datetime64("2025-07-02T00", "h"), 12
BIN = Path(sys.executable).parent
REPLICA_PREFIX = "SERVE_REPLICA::dlens#DLENS#"  # Serve's actor names of the DLENS replicas (namespace serve)


def prepare(workdir: Path) -> tuple[str, str]:
    """The store and a registered model in `workdir`, built when missing, reused when there."""
    store = workdir / "store.zarr"
    if not (store / "zarr.json").exists() and not (store / ".zgroup").exists():
        command = [str(BIN / "dlens-ingest"), "--no-progress", "synthetic", "--store", str(store),
                   "--start", "2025-07-01", "--days", "2", "--domain", "demo", "--leads", "0:24:6", "--seed", "0"]  # fmt: skip
        print(f"$ {shlex.join(command)}", flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    url = str(store)
    registered = entries(url)
    if registered:
        return url, registered[-1].model_id
    config = load_config(Path("configs/train/demo.yaml"))
    shape = StoreReader(url).spec.domain.shape
    torch.manual_seed(0)
    model = make_model(config, shape)
    card = {"val_ratio": float("nan")}
    standardisation = store_standardisation(url, config.data.train, config.data.predictors)
    return url, publish(url, config, store_normaliser(url), standardisation, model.state_dict(), shape, card)


def request_body(url: str) -> tuple[bytes, tuple[int, int]]:
    members = StoreReader(url).members("o3", RUN, LEAD)[:, 0]
    fields = {
        m: np.round(members[i].astype(np.float64), 2).tolist()
        for i, m in enumerate(MEMBERS)
        if np.isfinite(members[i]).all()
    }
    body = json.dumps({"species": "o3", "run": f"{RUN}:00", "lead": LEAD, "members": fields}).encode()
    return body, members.shape[1:]


@dataclass
class Answer:
    start: float
    end: float
    outcome: str  # "200", another status code, or the client's exception name
    ok: bool
    detail: str = ""  # the start of a failure's answer


class Failover:
    """Kills one replica once `kill_at` requests have been answered, then watches Serve until two replicas
    run again, the killed one not among them, or RECOVERY_TIMEOUT_S passed. The load goes on meanwhile, and
    past its count until `min_after` requests started after the recovery have been answered."""

    def __init__(self, kill_at: int, min_after: int):
        self.kill_at, self.min_after = kill_at, min_after
        self.answered = self.answered_after = 0
        self.cond = threading.Condition()
        self.watching = True  # until recovered or given up
        self.killed: str | None = None
        self.t_kill: float | None = None
        self.t_recovered: float | None = None
        self.in_flight_at_kill = 0
        self.states: list[tuple[float, dict]] = []  # (s after the kill, replica states) as they change
        self.per_replica: list[int] = []  # samples predicted by each live replica at the end

    def count(self, start: float) -> None:
        with self.cond:
            self.answered += 1
            if self.t_recovered is not None and start >= self.t_recovered:
                self.answered_after += 1
            self.cond.notify_all()

    def wants_more(self) -> bool:
        """Whether the load must go on past its count: Serve not yet recovered, or too few answers since."""
        with self.cond:
            return self.watching or (self.t_recovered is not None and self.answered_after < self.min_after)

    def run(self, in_flight: Callable[[], int]) -> None:
        import ray

        try:
            with self.cond:
                self.cond.wait_for(lambda: self.answered >= self.kill_at)
            names = sorted(replica_names())
            self.killed = names[0]
            victim = ray.get_actor(self.killed, namespace="serve")
            self.in_flight_at_kill = in_flight()
            self.t_kill = time.perf_counter()
            ray.kill(victim, no_restart=True)
            print(f"  killed replica {self.killed.removeprefix(REPLICA_PREFIX)} of {len(names)} after "
                  f"{self.answered} answers, {self.in_flight_at_kill} requests in flight", flush=True)  # fmt: skip
            self.watch()
        finally:
            with self.cond:
                self.watching = False

    def watch(self) -> None:
        from ray import serve

        from dlens.serve.app import APP_NAME

        while (now := time.perf_counter()) - self.t_kill < RECOVERY_TIMEOUT_S:
            deployment = serve.status().applications[APP_NAME].deployments["DLENS"]
            states = {getattr(k, "value", str(k)): n for k, n in deployment.replica_states.items() if n}
            if not self.states or self.states[-1][1] != states:
                self.states.append((round(now - self.t_kill, 2), states))
            live = replica_names()
            if self.killed not in live and len(live) == REPLICAS and states == {"RUNNING": REPLICAS}:
                with self.cond:
                    self.t_recovered = now
                print(f"  recovered {now - self.t_kill:.1f} s after the kill: {REPLICAS} replicas running, "
                      f"replica states seen {[s for _, s in self.states]}", flush=True)  # fmt: skip
                return
            time.sleep(0.1)
        print(f"  NOT recovered {RECOVERY_TIMEOUT_S:.0f} s after the kill", flush=True)


def samples_per_replica(handle, calls: int = 40) -> list[int]:
    """Samples each live replica has predicted (its stats, through the handle: calls land on either replica;
    the two are told apart by their counts, which differ)."""
    totals = set()
    for _ in range(calls):
        sizes = handle.stats.remote().result()["batch_sizes"]
        totals.add(sum(int(size) * n for size, n in sizes.items()))
    return sorted(totals, reverse=True)


def min_after(requests: int) -> int:
    return max(MIN_AFTER, round(MIN_AFTER_FRACTION * requests))


def replica_names() -> set[str]:
    import ray

    named = ray.util.list_named_actors(all_namespaces=True)
    return {a["name"] for a in named if a["namespace"] == "serve" and a["name"].startswith(REPLICA_PREFIX)}


def load(
    base: str, body: bytes, clients: int, requests: int, shape: tuple[int, int], failover: Failover | None
) -> tuple[list[Answer], float]:
    """`requests` POSTs (more while `failover` wants them) from `clients` threads, each sending its next
    request when its last is answered."""
    answers: list[Answer] = []
    lock = threading.Lock()
    issued = 0
    outstanding: set[int] = set()

    def client() -> None:
        nonlocal issued
        with httpx.Client(base_url=base, timeout=120, headers={"content-type": "application/json"}) as http:
            while True:
                with lock:
                    if issued >= requests and not (failover and failover.wants_more()):
                        return
                    index, issued = issued, issued + 1
                    outstanding.add(index)
                start = time.perf_counter()
                detail = ""
                try:
                    response = http.post("/v1/ensemble", content=body)
                    end = time.perf_counter()  # the answer received; checked after
                    outcome = str(response.status_code)
                    ok = response.status_code == 200 and len(response.json()["dlens"]) == shape[0]
                    detail = "" if ok else response.text[:160]
                except httpx.HTTPError as exc:
                    end, ok, outcome, detail = time.perf_counter(), False, type(exc).__name__, str(exc)[:160]
                except (ValueError, KeyError, TypeError) as exc:  # a 200 without the field
                    ok, detail = False, repr(exc)[:160]
                with lock:
                    outstanding.discard(index)
                    answers.append(Answer(start, end, outcome, ok, detail))
                if failover:
                    failover.count(start)

    def in_flight() -> int:
        with lock:
            return len(outstanding)

    watcher = threading.Thread(target=failover.run, args=(in_flight,), daemon=True) if failover else None
    if watcher:
        watcher.start()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    if watcher:
        watcher.join()
    return answers, elapsed


def phase_row(name: str, answers: list[Answer]) -> dict:
    latencies = [(a.end - a.start) * 1000 for a in answers if a.ok]
    percentiles = {
        f"p{q}_ms": float(np.percentile(latencies, q)) if latencies else float("nan") for q in (50, 95, 99)
    }
    return {"phase": name, "requests": len(answers), "failed": sum(not a.ok for a in answers),
            "failures": dict(Counter(a.outcome for a in answers if not a.ok)), **percentiles}  # fmt: skip


def serve_run(
    url: str, model_id: str, body: bytes, shape: tuple[int, int], args: argparse.Namespace
) -> tuple[list[Answer], float, Failover]:
    import ray
    from ray import serve

    from dlens.serve.app import APP_NAME, build_app
    from dlens.serve.args import ServeArgs

    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"enable_access_log": False})
    base = f"http://127.0.0.1:{port}"
    try:
        app = build_app(ServeArgs(store=url, model=model_id, num_replicas=REPLICAS, allow_anonymous=True))
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        running = len(replica_names())
        # Warm-up: every replica loads the model, every client opens its connection.
        warm, _ = load(base, body, args.clients, 8 * args.clients, shape, None)
        if running != REPLICAS or not all(a.ok for a in warm):
            raise RuntimeError(f"{running} replicas; warm-up: {dict(Counter(a.outcome for a in warm))}")
        failover = Failover(round(args.requests * KILL_AFTER), min_after(args.requests))
        answers, elapsed = load(base, body, args.clients, args.requests, shape, failover)
        failover.per_replica = samples_per_replica(serve.get_deployment_handle("DLENS", APP_NAME))
    finally:
        serve.shutdown()
        ray.shutdown()
    return answers, elapsed, failover


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests of the run (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK} requests")
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep (or reuse) the store and model here (default: a temp dir)",
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/serve_failover.json"))
    args = parser.parse_args()
    if args.quick:
        args.requests = QUICK
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return measure(args, args.workdir.resolve())
    with tempfile.TemporaryDirectory(prefix="dlens-serve-failover-") as folder:
        return measure(args, Path(folder))


def measure(args: argparse.Namespace, workdir: Path) -> int:
    url, model_id = prepare(workdir)
    body, shape = request_body(url)
    print(
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {len(os.sched_getaffinity(0))} CPUs"
    )
    print(f"model {model_id}, field {shape[0]}×{shape[1]}, body {len(body) / 1e3:.0f} kB; {args.requests} "
          f"requests from {args.clients} clients, {REPLICAS} replicas, one killed after "
          f"{round(args.requests * KILL_AFTER)} answers", flush=True)  # fmt: skip
    answers, elapsed, failover = serve_run(url, model_id, body, shape, args)

    t_kill = failover.t_kill if failover.t_kill is not None else float("inf")
    t_back = failover.t_recovered if failover.t_recovered is not None else float("inf")
    phases = {
        "before": [a for a in answers if a.end < t_kill],
        "outage": [a for a in answers if a.end >= t_kill and a.start < t_back],
        "after": [a for a in answers if a.start >= t_back],
    }
    rows = [phase_row(name, group) for name, group in phases.items()]
    before = rows[0]
    for row in rows:
        for q in (50, 95, 99):
            row[f"p{q}_ratio"] = row[f"p{q}_ms"] / before[f"p{q}_ms"]
    failures = [a for a in answers if not a.ok]
    recovery_s = t_back - t_kill if failover.t_recovered is not None else None
    noticed_s = next((t for t, states in failover.states if states != {"RUNNING": REPLICAS}), None)
    least = min_after(args.requests)
    after = rows[2]
    checks = {
        "failed requests": (len(failures), f"≤ {args.clients} (clients)", len(failures) <= args.clients),
        "failed before the kill": (before["failed"], "0", before["failed"] == 0),
        "failed after recovery": (after["failed"], f"0 of ≥ {least}", failover.t_recovered is not None
                                  and after["failed"] == 0 and after["requests"] >= least),
    }  # fmt: skip

    extra = len(answers) - args.requests
    print(f"\n{len(answers)} requests" + (f" ({extra} past --requests, to have {least} after recovery)" if extra > 0 else "")
          + f" in {elapsed:.1f} s ({len(answers) / elapsed:.1f} req/s); killed "
          f"{(failover.killed or 'none').removeprefix(REPLICA_PREFIX)} with {failover.in_flight_at_kill} in flight; "
          + (f"Serve noticed {noticed_s:.1f} s later, " if noticed_s is not None else "")
          + (f"recovered {recovery_s:.1f} s later" if recovery_s is not None else "NOT recovered"))  # fmt: skip
    print("replica states after the kill (s: states): "
          + ", ".join(f"{t:.1f}: {s}" for t, s in failover.states))  # fmt: skip
    print(f"samples predicted by each live replica at the end: {failover.per_replica} (the survivor's count "
          f"includes the warm-up and the outage; the replacement's, requests since it started)")  # fmt: skip
    if failures:
        first, last = min(a.end for a in failures) - t_kill, max(a.end for a in failures) - t_kill
        outcomes = dict(Counter(a.outcome for a in failures))
        print(f"failures answered {first:.2f} to {last:.2f} s after the kill: {outcomes}; "
              f"{sorted({a.detail for a in failures})[:3]}")  # fmt: skip
    header = f"{'phase':<8} {'requests':>9} {'failed':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p50 ×':>7} {'p95 ×':>7} {'p99 ×':>7}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['phase']:<8} {r['requests']:>9} {r['failed']:>7} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p99_ms']:8.1f} "
              f"{r['p50_ratio']:7.2f} {r['p95_ratio']:7.2f} {r['p99_ratio']:7.2f}")  # fmt: skip
    print("(× : the phase's percentile over the before phase's; latencies of the answered requests)\n")
    for name, (value, target, met) in checks.items():
        print(f"{name:<26} {value:>6}  target {target:<14} {'met' if met else 'MISSED'}")
    passed = all(met for _, _, met in checks.values())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "serve_failover", "date": f"{datetime.now():%Y-%m-%d %H:%M}", "command": shlex.join(sys.argv),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
        "model": model_id, "field": list(shape), "body_bytes": len(body), "requests": len(answers),
        "requests_asked": args.requests, "min_after": least,
        "clients": args.clients, "replicas": REPLICAS, "seconds": elapsed, "killed": failover.killed,
        "in_flight_at_kill": failover.in_flight_at_kill, "noticed_s": noticed_s, "recovery_s": recovery_s,
        "replica_states": failover.states, "samples_per_replica": failover.per_replica, "phases": rows,
        "failures_by_outcome": dict(Counter(a.outcome for a in failures)),
        "failure_details": sorted({a.detail for a in failures})[:5],
        "checks": {k: {"value": v, "target": t, "met": m} for k, (v, t, m) in checks.items()}, "passed": passed,
    }, indent=1))  # fmt: skip
    print(("PASS" if passed else "FAIL") + f"; JSON: {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
