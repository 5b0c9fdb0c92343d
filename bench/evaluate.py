"""Benchmark: scoring throughput and peak memory of `dlens-evaluate` on full-grid synthetic days.

A field is one product × species × run × lead at level 0, paired with its analysis. Measured in one
run, on this machine, over one synthetic store (MACCGE01 420 × 700 by default; built first, or reused):
  1. the synthetic ingest and the baselines (median, mean, weighted, best-member): timed, not targets;
  2. the bare NumPy reference `sqrt(nanmean((f - o) ** 2))` per field, in one process:
     (a) on the fields of the first run, already in memory,
     (b) reading every product field and analysis of the period from the store, then computing it;
     with the pipeline's per-field kernel (`sum_statistics`: 10 sums × every region) on the fields of (a).
     Run before and after the pipeline (the machine is shared); each case keeps its faster run;
  3. one scoring unit (one run and species) per species in a fresh process: seconds and peak RSS;
  4. `score_period` (one Ray task per run and species) over 3, 10 and --days days, each on fresh Ray
     workers started as the service starts them, sampling the RSS (and reading the VmHWM) of the driver
     and of every Ray worker, their CPU time, and the MiB Ray spilled from its object store;
  5. diagnostic: --days days again with a 1 GiB object store instead of the service's 256 MiB.
Targets: the --days pipeline throughput as a ratio to (a) and to (b), measured in the same run; the
private peak RSS (RSS less the Ray object-store pages mapped, which Ray bounds by its store size) of the
driver and of the largest worker over --days days within 25 % of the 3-day peaks: memory bounded by the
chunk, not the period. Exit status 1 if a memory target fails. Total RSS is reported beside it.
Leads default to 0:96:24 (5 per run) to keep a 30-day full-grid store affordable to build.

    uv run python bench/evaluate.py [--days 30] [--domain full] [--reuse-store PATH] [--out bench/results/evaluate.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from unittest import mock

import numpy as np
import ray

from dlens.common.config import get_settings
from dlens.common.grid import parse_domain
from dlens.common.layout import ANALYSIS, product_group
from dlens.common.parallel import Unit, ensure_ray, fan_out
from dlens.common.reader import StoreReader
from dlens.common.species import SPECIES_NAMES, parse_leads
from dlens.common.writer import StoreSpec
from dlens.evaluate import evaluation
from dlens.evaluate.baselines import MEMBER_BASELINES, ensure_baselines
from dlens.evaluate.cli import build_parser, make_plan
from dlens.evaluate.evaluation import Plan, score_period
from dlens.evaluate.metrics import sum_statistics
from dlens.ingest.synthetic_ingest import SyntheticRequest, ingest_synthetic

START = datetime(2025, 7, 1)
PRODUCTS = ",".join(MEMBER_BASELINES)  # the median is the reference, scored like the others
MEMORY_TOLERANCE = 1.25
#: The longest period is scored once more with this object store (the service starts Ray with 256 MiB).
DIAGNOSTIC_STORE_MIB = 1024
MB = 1e6


# ---------------------------------------------------------------------------- memory sampling
def _proc(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/{name}", "rb") as f:
        return f.read().decode(errors="replace")


def _status_kb(pid: int, *keys: str) -> dict[str, int]:
    """Fields of /proc/PID/status in kB (missing ones are 0)."""
    out = dict.fromkeys(keys, 0)
    for line in _proc(pid, "status").splitlines():
        key = line.split(":", 1)[0]
        if key in out:
            out[key] = int(line.split()[1])
    return out


def _kind(cmdline: str) -> str:
    """The kind of a Ray process: "worker" (tasks), "io" (spilling, restoring) or "ray" (raylet, agents)."""
    title = cmdline.split(" ", 1)[0]
    if title.startswith("ray::") and ("SpillWorker" in title or "RestoreWorker" in title):
        return "io"
    if "default_worker" in cmdline or (title.startswith("ray::") and not title.endswith("Agent")):
        return "worker"  # ray::IDLE, or ray::<task>
    return "ray"


def _descendants(root: int) -> dict[int, str]:
    """pid -> kind (see `_kind`) of every process below `root`: the local Ray that this process started."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent[int(entry)] = int(_proc(int(entry), "stat").rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in found:
                try:
                    found[child] = _kind(_proc(child, "cmdline").replace("\0", " "))
                except OSError:
                    continue
                frontier.append(child)
    return found


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = _proc(pid, "stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); the sampled peak still counts if it fails."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


@dataclass
class Peak:
    """Peaks of one process (MB): RSS (sampled, and VmHWM at the end), and the RSS without shared pages."""

    kind: str
    rss: float = 0.0
    private: float = 0.0  # VmRSS - RssShmem: what the process holds itself
    shared: float = 0.0  # RssShmem (Ray object-store pages mapped) at the sampled RSS peak
    cpu_start: float = 0.0
    cpu_last: float = 0.0


@dataclass
class MemoryMonitor:
    """Peak RSS of this process and of every Ray process below it while the block runs, and their CPU time.

    RSS is sampled every `interval` s (the process list every second); each process's VmHWM, reset on
    entry, is read on exit, so a peak between samples still counts in `rss`.
    """

    interval: float = 0.1
    driver_before: float = 0.0
    procs: dict[int, Peak] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self, kinds: dict[int, str], cpu: bool = False) -> None:
        for pid, kind in kinds.items():
            try:
                kb = _status_kb(pid, "VmRSS", "RssShmem")
                peak = self.procs.setdefault(pid, Peak(kind))
                if cpu:
                    peak.cpu_last = _cpu_seconds(pid)
            except OSError:
                continue
            rss, shm = kb["VmRSS"] / 1024, kb["RssShmem"] / 1024
            if rss > peak.rss:
                peak.rss, peak.shared = rss, shm
            peak.private = max(peak.private, rss - shm)

    def _all(self) -> dict[int, str]:
        return {os.getpid(): "driver", **_descendants(os.getpid())}

    def _loop(self) -> None:
        kinds, listed = self._all(), time.monotonic()
        while not self._stop.wait(self.interval):
            refresh = time.monotonic() - listed > 1.0
            if refresh:
                kinds, listed = self._all(), time.monotonic()
            self._sample(kinds, cpu=refresh)

    @contextmanager
    def watch(self) -> Iterator[MemoryMonitor]:
        kinds = self._all()
        for pid in kinds:
            _reset_peak(pid)
        self._sample(kinds, cpu=True)
        for peak in self.procs.values():
            peak.cpu_start = peak.cpu_last
        self.driver_before = self.procs[os.getpid()].rss
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self._finish()

    def _finish(self) -> None:
        kinds = self._all()
        self._sample(kinds, cpu=True)
        for pid in kinds:
            try:
                hwm = _status_kb(pid, "VmHWM")["VmHWM"] / 1024
            except OSError:
                continue
            self.procs[pid].rss = max(self.procs[pid].rss, hwm)

    def of(self, kind: str) -> list[Peak]:
        return [p for p in self.procs.values() if p.kind == kind]

    def cpu_seconds(self) -> float:
        return sum(p.cpu_last - p.cpu_start for p in self.procs.values())


# ---------------------------------------------------------------------------- the store
def build_store(url: str, domain: str, leads: str, days: int) -> tuple[StoreSpec, float]:
    """Ingest (or complete) the synthetic store; committed cells are skipped, so a reused store is cheap."""
    if os.path.exists(url):
        spec = StoreReader(url).spec
    else:
        spec = StoreSpec(parse_domain(domain), tuple(parse_leads(leads)), (0,))
    seconds = timed(ingest_synthetic, SyntheticRequest(url, spec, START, days, SPECIES_NAMES, 0))
    return spec, seconds


def plan_for(url: str, days: int) -> Plan:
    argv = ["--store", url, "--start", f"{START:%Y-%m-%d}", "--days", str(days), "--products", PRODUCTS,
            "--out", "unused", "--no-progress"]  # fmt: skip
    return make_plan(build_parser().parse_args(argv), url)


def timed(fn: Callable, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def case(fields: int, fn: Callable, *args) -> dict:
    """Run `fn(*args)` in this process: fields, wall seconds, CPU seconds (all threads)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn(*args)
    return {"fields": fields, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}


# ---------------------------------------------------------------------------- the bare NumPy reference
def bare_rmse(forecast: np.ndarray, observed: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((forecast - observed) ** 2)))


def _fields(reader: StoreReader, plan: Plan, runs: tuple) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """(analysis, [product fields]) at level 0 for every run, species and lead, read with zarr directly."""
    a_pos = reader.axis(ANALYSIS)
    for run in runs:
        for sp in plan.species:
            arrays = [reader.array(product_group(p).path, sp) for p in plan.products]
            rows = [reader.axis(product_group(p).path)[run] for p in plan.products]
            truth_array = reader.array(ANALYSIS, sp)
            for li, lead in enumerate(plan.leads):
                truth = truth_array[a_pos[run + np.timedelta64(lead, "h")], 0]
                yield truth, [a[row, li, 0] for a, row in zip(arrays, rows)]


def bare_in_memory(pairs: list[tuple[np.ndarray, np.ndarray]], repeats: int) -> None:
    for _ in range(repeats):
        for f, o in pairs:
            bare_rmse(f, o)


def bare_from_store(reader: StoreReader, plan: Plan) -> None:
    for truth, fields in _fields(reader, plan, plan.runs):
        for f in fields:
            bare_rmse(f, truth)


def kernel_in_memory(pairs: list[tuple[np.ndarray, np.ndarray]], masks: np.ndarray) -> None:
    """The pipeline's per-field statistics (`sum_statistics`: every statistic over every region)."""
    for f, o in pairs:
        sum_statistics(f[None], o[None], masks)


def references(url: str, plan: Plan) -> dict[str, dict]:
    """The bare NumPy cases, and the pipeline's kernel on the same in-memory fields."""
    reader = StoreReader(url)
    pairs = [(f, truth) for truth, fields in _fields(reader, plan, plan.runs[:1]) for f in fields]
    repeats = 10
    out = {
        "bare_in_memory": case(repeats * len(pairs), bare_in_memory, pairs, repeats),
        "kernel_in_memory": case(len(pairs), kernel_in_memory, pairs, plan.regions.masks),
    }
    del pairs
    fields = len(plan.runs) * len(plan.species) * len(plan.products) * len(plan.leads)
    out["bare_from_store"] = case(fields, bare_from_store, reader, plan)
    return out


# ---------------------------------------------------------------------------- the pipeline
def _warm(seconds: float) -> None:
    """Occupy one worker while the scoring modules import (so the timing starts on warm workers)."""
    import dlens.evaluate.scoring  # noqa: F401

    time.sleep(seconds)


def fresh_ray(object_store_mib: int | None = None) -> int:
    """Restart the local Ray so a period starts on new workers; return the worker count.

    `object_store_mib`: None for the service's own start (`ensure_ray`), else a local Ray with that store.
    """
    ray.shutdown()
    if object_store_mib is None:
        ensure_ray()
    else:
        ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                 object_store_memory=object_store_mib * 1024**2)  # fmt: skip
    workers = int(ray.cluster_resources().get("CPU", 1))
    fan_out([Unit(f"warm-up {k}", _warm, (2.0,)) for k in range(workers)], lambda _: None, desc="warm-up")
    return workers


def spilled() -> dict[str, float]:
    """MiB spilled from and restored to the object store so far (Ray's memory summary; {} if unreadable)."""
    try:
        from ray._private.internal_api import memory_summary

        text = memory_summary(address=ray.get_runtime_context().gcs_address, stats_only=True)
    except Exception:  # a private API: the figure is a diagnostic, never a reason to fail
        return {}
    out = {}
    for key, pattern in (("spilled_MiB", r"Spilled (\d+) MiB"), ("restored_MiB", r"Restored (\d+) MiB")):
        found = re.search(pattern, text)
        out[key] = float(found.group(1)) if found else 0.0
    return out


def score(url: str, days: int, object_store_mib: int | None = None) -> dict:
    """Score `days` days on fresh Ray workers under the memory monitor."""
    plan = plan_for(url, days)
    workers = fresh_ray(object_store_mib)
    gc.collect()
    fan_seconds: list[float] = []

    def timed_fan_out(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fan_out(*args, **kwargs)
        finally:
            fan_seconds.append(time.perf_counter() - t0)

    monitor = MemoryMonitor()
    with mock.patch.object(evaluation, "fan_out", timed_fan_out), monitor.watch():
        t0 = time.perf_counter()
        score_period(plan)
        seconds = time.perf_counter() - t0
    fields = len(plan.runs) * len(plan.species) * len(plan.products) * len(plan.leads)
    driver, pool = monitor.of("driver")[0], monitor.of("worker")
    biggest = max(pool, key=lambda p: p.rss)
    return {
        "days": days, "object_store_MiB": object_store_mib, "runs": len(plan.runs), "units": len(plan.runs) * len(plan.species), "fields": fields,
        "seconds": seconds, "fan_out_seconds": fan_seconds[0], "fields_per_s": fields / seconds,
        "cpu_seconds": monitor.cpu_seconds(), "ray_workers": workers, "workers_seen": len(pool),
        "io_workers_seen": len(monitor.of("io")), **spilled(),
        "driver_before_MB": monitor.driver_before, "driver_peak_MB": driver.rss,
        "driver_private_peak_MB": driver.private, "driver_shared_MB": driver.shared,
        "worker_peak_MB": biggest.rss, "worker_shared_MB": biggest.shared,
        "worker_private_peak_MB": max(p.private for p in pool),
        "worker_peaks_MB": sorted((p.rss for p in pool), reverse=True),
    }  # fmt: skip


UNIT_PROBE = """
import sys, time
from dlens.common.reader import StoreReader
from dlens.evaluate.regions import regions_for
from dlens.evaluate.scoring import Window, score_unit
def status(key):  # kB, of this address space only
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))
url, run, species, products = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
domain = StoreReader(url).spec.domain
regions_for(domain)  # the masks a worker builds once
try:
    open("/proc/self/clear_refs", "w").write("5")  # peak := current, after imports and masks
except OSError:
    pass
base = status("VmRSS:")
t0, c0 = time.perf_counter(), time.process_time()
score_unit(url, run, species, products, domain, Window(slice(None), slice(None)))
print(base, status("VmHWM:"), time.perf_counter() - t0, time.process_time() - c0)
"""


def unit_probe(url: str, plan: Plan, species: str) -> dict:
    """Seconds and peak RSS (MB) of one (run, species) scoring unit in a fresh process."""
    argv = [url, str(plan.runs[0]), species, ",".join(plan.products)]
    out = subprocess.run([sys.executable, "-c", UNIT_PROBE, *argv], check=True, capture_output=True,
                         text=True).stdout.split()  # fmt: skip
    base, peak = int(out[-4]) / 1024, int(out[-3]) / 1024
    return {"species": species, "base_MB": base, "peak_MB": peak, "unit_MB": peak - base,
            "fields": len(plan.products) * len(plan.leads), "seconds": float(out[-2]),
            "cpu_seconds": float(out[-1])}  # fmt: skip


# ---------------------------------------------------------------------------- main
def periods(days: int) -> list[int]:
    return sorted({min(3, days), min(10, days), days})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30, help="the longest period scored (default 30)")
    parser.add_argument("--domain", default="full", help="domain of a new store (default full)")
    parser.add_argument("--leads", default="0:96:24", help="leads of a new store (default 0:96:24)")
    parser.add_argument("--reuse-store", type=Path, metavar="PATH",
                        help="use (and keep) the store at PATH, building it there first if absent")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench/results/evaluate.json"))
    args = parser.parse_args()
    get_settings().progress = False
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="dlens-bench-evaluate-"))
    url = str(args.reuse_store.resolve() if args.reuse_store else work / "store.zarr")
    try:
        doc = run_all(url, args)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    doc["wall_seconds"] = time.perf_counter() - started
    return report(doc, args.out)


def run_all(url: str, args: argparse.Namespace) -> dict:
    doc: dict = {"date": datetime.now().isoformat(timespec="seconds"),
                 "command": shlex.join(["python", *sys.argv]), "machine": machine()}  # fmt: skip
    print(f"store {url}: ingest of {args.days} synthetic days (skipped where committed)...", flush=True)
    spec, ingest_s = build_store(url, args.domain, args.leads, args.days)
    plan = plan_for(url, args.days)
    print("baselines (skipped where committed)...", flush=True)
    baseline_s = timed(ensure_baselines, url, plan.runs, MEMBER_BASELINES, get_settings().weight_window_days)
    baseline_fields = len(MEMBER_BASELINES) * len(SPECIES_NAMES) * len(plan.runs) * len(plan.leads)
    print("bare NumPy reference...", flush=True)
    before = references(url, plan)
    print("one scoring unit per species in a fresh process...", flush=True)
    probes = [unit_probe(url, plan, sp) for sp in plan.species]
    scored = []
    for days in periods(args.days):
        print(f"score_period over {days} days...", flush=True)
        scored.append(score(url, days))
    print(f"score_period over {args.days} days with a {DIAGNOSTIC_STORE_MIB} MiB object store...", flush=True)
    diagnostic = score(url, args.days, DIAGNOSTIC_STORE_MIB)
    ray.shutdown()
    print("bare NumPy reference again...", flush=True)
    after = references(url, plan)
    # The machine is shared: each reference case keeps the faster of its two runs (around the pipeline).
    cases = {key: min(before[key], after[key], key=lambda c: c["seconds"]) for key in before}
    field_mb = 4 * spec.domain.shape[0] * spec.domain.shape[1] / MB
    return doc | {
        "store": {"url": url, "domain": spec.domain.to_attrs(), "leads": list(spec.leads), "days": args.days,
                  "ingest_seconds": ingest_s},
        "products": list(plan.products), "species": list(plan.species), "regions": list(plan.regions.names),
        "field_MB": field_mb, "lead_in_flight_MB": (len(plan.products) + 1) * field_mb,
        "baselines": {"seconds": baseline_s, "fields_written": baseline_fields,
                      "fields_per_s": baseline_fields / baseline_s},
        **cases,
        "references_before_after": {"before": before, "after": after},
        "unit_probes": probes,
        "scoring": scored,
        "diagnostic": diagnostic,
    }  # fmt: skip


def machine() -> dict:
    with open("/proc/meminfo") as f:
        mem = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
    return {"machine": platform.machine(), "processor": platform.processor(), "cpus": len(os.sched_getaffinity(0)),
            "memory_GiB": round(mem / 1024**2, 1), "python": platform.python_version(), "numpy": np.__version__,
            "ray": ray.__version__, "kernel": platform.release()}  # fmt: skip


def rates(row: dict) -> dict:
    row["fields_per_s"] = row["fields"] / row["seconds"]
    row["fields_per_cpu_s"] = row["fields"] / row["cpu_seconds"]
    return row


def report(doc: dict, out: Path) -> int:
    probe = max(doc["unit_probes"], key=lambda p: p["unit_MB"])
    units = {key: sum(p[key] for p in doc["unit_probes"]) for key in ("fields", "seconds", "cpu_seconds")}
    rows = [
        ("bare RMSE, fields in memory (first run, 1 process)", rates(doc["bare_in_memory"])),
        ("bare RMSE, read from the store + compute (1 process)", rates(doc["bare_from_store"])),
        ("sum_statistics alone, fields in memory (1 process)", rates(doc["kernel_in_memory"])),
        ("score_unit, one run, each species in a fresh process", rates(units)),
        *[(f"score_period, {r['days']} days (Ray, {r['ray_workers']} workers)", rates(r)) for r in doc["scoring"]],
        (f"  diagnostic: {doc['diagnostic']['days']} days, {DIAGNOSTIC_STORE_MIB} MiB object store",
         rates(doc["diagnostic"])),
    ]  # fmt: skip
    longest = doc["scoring"][-1]
    doc["ratios"] = {
        "pipeline_to_bare_in_memory": longest["fields_per_s"] / doc["bare_in_memory"]["fields_per_s"],
        "pipeline_to_bare_from_store": longest["fields_per_s"] / doc["bare_from_store"]["fields_per_s"],
        "pipeline_to_bare_from_store_per_cpu_s": longest["fields_per_cpu_s"]
        / doc["bare_from_store"]["fields_per_cpu_s"],
    }
    doc["unit_probes_total"] = units
    doc["targets"] = targets(doc["scoring"])
    print_report(doc, rows, probe)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(f"JSON: {out}")
    return 0 if all(t["pass"] for t in doc["targets"].values()) else 1


def print_report(doc: dict, rows: list[tuple[str, dict]], probe: dict) -> None:
    s, m, longest = doc["store"], doc["machine"], doc["scoring"][-1]
    print(f"\nevaluate benchmark: domain {s['domain']['name']} {tuple(s['domain']['shape'])}, leads {s['leads']}, "
          f"{len(doc['products'])} products x {len(doc['species'])} species, {len(doc['regions'])} regions; "
          f"{m['machine']}, {m['cpus']} CPUs, {m['memory_GiB']} GiB")  # fmt: skip
    print(f"store: {s['days']} days, ingest {s['ingest_seconds']:.1f} s; baselines: "
          f"{doc['baselines']['fields_written']} fields in {doc['baselines']['seconds']:.1f} s")  # fmt: skip
    print(f"\n{'case':<56}{'fields':>7}{'seconds':>9}{'fields/s':>10}{'CPU s':>8}{'fields/CPU s':>14}")
    for name, r in rows:
        print(f"{name:<56}{r['fields']:>7}{r['seconds']:>9.2f}{r['fields_per_s']:>10.1f}{r['cpu_seconds']:>8.1f}"
              f"{r['fields_per_cpu_s']:>14.1f}")  # fmt: skip
    r = doc["ratios"]
    print(f"ratio pipeline ({longest['days']} d) / bare in memory {r['pipeline_to_bare_in_memory']:.3f}, "
          f"/ bare read + compute {r['pipeline_to_bare_from_store']:.3f} "
          f"(per CPU second {r['pipeline_to_bare_from_store_per_cpu_s']:.3f})")  # fmt: skip
    print(f"\n{'period':<9}{'units':>6}{'seconds':>9}{'fan-out':>9}{'spilled':>9}{'driver before':>15}"
          f"{'driver peak':>13}{'private':>9}{'worker peak':>13}{'private':>9}")  # fmt: skip
    for r in [*doc["scoring"], doc["diagnostic"]]:
        print(f"{r['days']:>3} days{'*' if r['object_store_MiB'] else ' '}{r['units']:>6}{r['seconds']:>9.1f}{r['fan_out_seconds']:>9.1f}"
              f"{r.get('spilled_MiB', float('nan')):>5.0f} MiB{r['driver_before_MB']:>12.0f} MB"
              f"{r['driver_peak_MB']:>10.0f} MB{r['driver_private_peak_MB']:>6.0f} MB{r['worker_peak_MB']:>10.0f} MB"
              f"{r['worker_private_peak_MB']:>6.0f} MB")  # fmt: skip
    print(
        f"* diagnostic: a {DIAGNOSTIC_STORE_MIB} MiB Ray object store (the service starts Ray with 256 MiB)"
    )
    print(f"one field {doc['field_MB']:.2f} MB; one lead in flight ({len(doc['products'])} products + analysis) "
          f"{doc['lead_in_flight_MB']:.1f} MB; one unit ({probe['species']}) in a fresh process: "
          f"{probe['unit_MB']:.0f} MB above its imports; every field of {longest['days']} days: "
          f"{longest['fields'] * doc['field_MB'] / 1e3:.1f} GB")  # fmt: skip
    for name, t in doc["targets"].items():
        print(f"{'PASS' if t['pass'] else 'FAIL'}: {name}: {t['longest_MB']:.0f} MB over {longest['days']} days vs "
              f"{t['shortest_MB']:.0f} MB over {doc['scoring'][0]['days']} days (limit x{MEMORY_TOLERANCE})")  # fmt: skip
    print(f"wall time {doc['wall_seconds'] / 60:.1f} min")


def targets(scored: list[dict]) -> dict[str, dict]:
    """Private peaks (RSS less the object-store pages, which Ray bounds by its store size) must not grow."""
    first, last = scored[0], scored[-1]
    out = {}
    for name, key in (("driver private peak", "driver_private_peak_MB"),
                      ("largest worker private peak", "worker_private_peak_MB")):  # fmt: skip
        out[name] = {"shortest_MB": first[key], "longest_MB": last[key],
                     "pass": last[key] <= MEMORY_TOLERANCE * first[key]}  # fmt: skip
    return out


if __name__ == "__main__":
    sys.exit(main())
