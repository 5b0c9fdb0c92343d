"""Benchmark: ingest of one full-grid synthetic day (11 members, 4 species, level 0, leads 0-96 h every 3 h).

One day: one run's members and meteo, and every hour of its valid times (0-96 h) of the analysis, the two
reanalyses and the station observations. Measured in one run, on this machine:
  0. generation by the first edition of the generator (commit FIRST_EDITION, checked out in a temporary
     git worktree and run in a fresh process): one run's members and meteo and 97 hours of its analysis,
     and by this checkout's (the second) edition in a fresh process too, every block of the day dropped
     once made, alternating, PROBE_ROUNDS times each; the best of each is compared (the target),
  1. generation with every block kept in memory for the writers (reported, not judged),
  2. the same bytes written as raw .npy files (one file per chunk-sized block): the baseline,
  3. the same blocks written through the store writer (chunking, shards, blosc-zstd, status commits),
  4. the whole `dlens-ingest synthetic` pipeline (Ray tasks, generation + writes) into a fresh store,
  5. the peak memory of one worker unit (one run and species of members, all leads), in a fresh process,
  6. with --s3: 2 and 3 against an S3 endpoint (moto's server over HTTP on loopback).
Ratios (store throughput / raw throughput, generation time / the first edition's) are the figures to
compare across machines. Targets, on the full grid: the store writer reaches at least 0.5 of the raw
throughput (locally and, with --s3, on S3); generation takes at most 1.5 × the first edition's time. The
exit status is 1 when one is missed.

    uv run python bench/ingest.py [--domain full] [--s3] [--out bench/results/ingest.json]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from dlens.common.grid import parse_domain
from dlens.common.layout import FORECASTS, METEO, METEO_VARIABLES, OBSERVATIONS, TARGETS, Status
from dlens.common.species import SPECIES_NAMES, parse_leads
from dlens.common.writer import FieldWriter, StoreCoordinator, StoreSpec
from dlens.ingest.synthetic import SyntheticGenerator
from dlens.ingest.synthetic_ingest import SyntheticRequest, ingest_synthetic, station_arrays

RUN = datetime(2025, 7, 1)
WRITER_TARGET = 0.5  # store writer throughput / raw .npy throughput, on the full grid
GENERATION_TARGET = 1.5  # generation time / the first edition's, on the full grid
PROBE_ROUNDS = 2  # fresh-process generations of each edition, alternating; the best of each is compared
#: The last commit of the first synthetic world (generator version 1), the speed reference.
FIRST_EDITION = "c717748"
REPO = Path(__file__).resolve().parents[1]


def day_blocks(spec: StoreSpec, seed: int) -> Iterator[tuple[str, str, tuple, np.ndarray]]:
    """Every block of one day, as (group, variable, region, data), in the order the ingest's units compute
    them (a run lead by lead, then the hours of its valid times)."""
    gen = SyntheticGenerator(spec.domain, seed)
    for li, lead in enumerate(spec.leads):
        for sp in SPECIES_NAMES:
            yield FORECASTS, sp, (0, li, slice(None), 0), gen.members(sp, RUN, lead)
            if lead % 48 == 0:
                gen.error_floor(sp, RUN, lead)
        for var in METEO_VARIABLES:
            yield METEO, var, (0, li), gen.meteo(var, RUN, lead)
    for h in range(max(spec.leads) + 1):
        valid = RUN + timedelta(hours=h)
        for sp in SPECIES_NAMES:
            for kind, path in TARGETS.items():
                yield path, sp, (h, 0), gen.analysis(sp, valid, kind)
            yield OBSERVATIONS, sp, (h, slice(None)), gen.observations(sp, valid)
            gen.analysis_floor(sp, valid)


def generate(spec: StoreSpec, seed: int) -> list[tuple[str, str, tuple, np.ndarray]]:
    """Every block of one day, kept in memory (for the writers)."""
    return list(day_blocks(spec, seed))


def probe_generation(spec: StoreSpec) -> float:
    """Seconds to generate every block of one day, each dropped once made (what the first edition's probe
    does: a process that holds 3.3 GB of fields pays for fresh memory on every allocation)."""
    started = time.perf_counter()
    for _ in day_blocks(spec, seed=0):
        pass
    return time.perf_counter() - started


def second_edition_generation(spec: StoreSpec) -> float:
    """`probe_generation` of this checkout's generator, in a fresh process like the first edition's."""
    leads = ",".join(map(str, spec.leads))
    done = subprocess.run([sys.executable, __file__, "--probe", "--domain", spec.domain.spec(), "--leads", leads],
                          check=True, capture_output=True, text=True)  # fmt: skip
    return float(done.stdout.split()[-1])


def paired_generation(spec: StoreSpec, reference: str) -> tuple[float, float]:
    """The best of PROBE_ROUNDS alternating fresh-process runs of the first and the second edition."""
    first, second = [], []
    for _ in range(PROBE_ROUNDS):
        first.append(first_edition_generation(spec, reference))
        second.append(second_edition_generation(spec))
    return min(first), min(second)


FIRST_EDITION_PROBE = """
import sys, time
from datetime import datetime, timedelta
import dlens.ingest.synthetic as synthetic
from dlens.common.grid import parse_domain
from dlens.ingest.synthetic import SyntheticGenerator
assert synthetic.__file__.startswith(sys.argv[3]), synthetic.__file__
run, leads = datetime(2025, 7, 1), [int(x) for x in sys.argv[2].split(",")]
started = time.perf_counter()
gen = SyntheticGenerator(parse_domain(sys.argv[1]), 0)
for sp in ("o3", "no2", "so2", "pm10"):
    for lead in leads:
        gen.members(sp, run, lead)
    for h in range(max(leads) + 1):
        gen.analysis(sp, run + timedelta(hours=h))
for var in ("t2m", "blh", "u10", "v10", "ssrd"):
    for lead in leads:
        gen.meteo(var, run, lead)
print(time.perf_counter() - started)
"""


def first_edition_generation(spec: StoreSpec, commit: str) -> float:
    """Seconds the first edition of the generator takes for the same day, run from a temporary git
    worktree of `commit` (its dlens.common and dlens.ingest first on the path)."""
    tree = Path(tempfile.mkdtemp(prefix="dlens-first-edition-"))
    try:
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit],
                       check=True, capture_output=True, text=True)  # fmt: skip
        src = [tree / "services" / "ingest" / "src", tree / "libs" / "common" / "src"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, src))}
        leads = ",".join(map(str, spec.leads))
        done = subprocess.run([sys.executable, "-c", FIRST_EDITION_PROBE, spec.domain.spec(), leads, str(tree)],
                              env=env, check=True, capture_output=True, text=True)  # fmt: skip
        return float(done.stdout.split()[-1])
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True
        )
        shutil.rmtree(tree, ignore_errors=True)


def write_raw_files(blocks, directory: Path) -> None:
    for k, (_, _, _, data) in enumerate(blocks):
        np.save(directory / f"{k:05d}.npy", data)


def write_raw_s3(blocks, client, bucket: str) -> None:
    for k, (_, _, _, data) in enumerate(blocks):
        buf = io.BytesIO()
        np.save(buf, data)
        client.put_object(Bucket=bucket, Key=f"raw/{k:05d}.npy", Body=buf.getvalue())


def write_store(blocks, url: str, spec: StoreSpec, network: tuple) -> None:
    """The store writer's part of an ingest: axes, the station network (computed beforehand, as the
    ingest's coordinator does, so its static fields are not timed as writing), the blocks, the commits."""
    coord = StoreCoordinator(url, spec)
    coord.ensure_observations(*network)
    coord.ensure_axis(FORECASTS, [RUN])
    coord.ensure_axis(METEO, [RUN])
    hours = [RUN + timedelta(hours=h) for h in range(max(spec.leads) + 1)]
    for path in (*TARGETS.values(), OBSERVATIONS):
        coord.ensure_axis(path, hours)
    writer = FieldWriter(url)
    for group, var, region, data in blocks:
        writer.write(group, var, region, data)
    coord.mark(FORECASTS, 0, Status.COMPLETE)
    coord.mark(METEO, 0, Status.COMPLETE)
    for path in (*TARGETS.values(), OBSERVATIONS):
        coord.mark(path, list(range(len(hours))), Status.COMPLETE)


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domain", default="full")
    parser.add_argument("--leads", default="0:96:3")
    parser.add_argument("--s3", action="store_true", help="also measure against an S3 endpoint (moto server)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    parser.add_argument("--reference", default=FIRST_EDITION, help="commit of the generator to compare with")
    # Internal: one timed generation of this checkout's edition, its seconds printed (second_edition_generation).
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    spec = StoreSpec(parse_domain(args.domain), tuple(parse_leads(args.leads)), (0,))
    if args.probe:
        print(probe_generation(spec))
        return 0
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="dlens-bench-"))
    try:
        t_first, t_second = paired_generation(spec, args.reference)
        t_gen = time.perf_counter()
        blocks = generate(spec, seed=0)
        t_gen = time.perf_counter() - t_gen
        mb = sum(b[3].nbytes for b in blocks) / 1e6
        (work / "raw").mkdir()
        t_raw = timed(write_raw_files, blocks, work / "raw")
        network = station_arrays(SyntheticGenerator(spec.domain, 0))
        t_store = timed(write_store, blocks, str(work / "store.zarr"), spec, network)
        stored_mb = sum(p.stat().st_size for p in (work / "store.zarr").rglob("*") if p.is_file()) / 1e6
        rows += [
            {"case": f"generate, first edition ({args.reference})", "seconds": t_first, "MB": None,
             "note": f"fresh process, best of {PROBE_ROUNDS}: one run, 97 h of its analysis, meteo"},
            {"case": "generate, second edition", "seconds": t_second, "MB": mb,
             "ratio_to_first_edition": t_second / t_first,
             "note": f"fresh process, best of {PROBE_ROUNDS}, each block dropped once made, as the first edition's"},
            {"case": "generate (in memory)", "seconds": t_gen, "MB": mb, "ratio_to_first_edition": t_gen / t_first,
             "note": "every block kept for the writers (not judged)"},
            {"case": "raw .npy files", "seconds": t_raw, "MB": mb},
            {"case": "store writer, local", "seconds": t_store, "MB": mb, "ratio_to_raw": t_raw / t_store,
             "stored_MB": stored_mb},
        ]  # fmt: skip
        del blocks
        req = SyntheticRequest(str(work / "e2e.zarr"), spec, RUN, 1, SPECIES_NAMES, 0)
        t_e2e = timed(ingest_synthetic, req)
        rows.append({"case": "dlens-ingest synthetic (Ray, end to end)", "seconds": t_e2e, "MB": mb,
                     "ratio_to_raw": (t_gen + t_raw) / t_e2e, "note": "vs generate + raw write"})  # fmt: skip
        memory = worker_memory(str(work / "e2e.zarr"), spec)
        if args.s3:
            rows += bench_s3(spec)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report(rows, spec, args.out, memory)


WORKER_PROBE = """
import sys
from datetime import datetime
from dlens.common.grid import parse_domain
from dlens.common.writer import StoreSpec
from dlens.ingest.synthetic_ingest import run_unit
spec = StoreSpec(parse_domain(sys.argv[2]), tuple(int(x) for x in sys.argv[3].split(",")), (0,))
def status(key):  # kB, of this address space only (ru_maxrss would include the parent's before exec)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))
base = status("VmHWM:")
run_unit(sys.argv[1], spec.domain, 0, datetime(2025, 7, 1), 0, ("o3", "no2", "so2", "pm10"), spec.leads, True)
print(base, status("VmHWM:"))
"""


def worker_memory(store: str, spec: StoreSpec) -> dict:
    """Peak RSS (MB) of one run unit (every species' members, the meteo) in a fresh process, above its imports."""
    leads = ",".join(map(str, spec.leads))
    out = subprocess.run([sys.executable, "-c", WORKER_PROBE, store, spec.domain.spec(), leads],
                         check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
    base, peak = (int(v) / 1024 for v in out[-2:])
    field_mb = 4 * spec.domain.shape[0] * spec.domain.shape[1] / 1e6
    return {"imports_MB": base, "peak_MB": peak, "unit_MB": peak - base, "field_MB": field_mb,
            "unit_in_fields": (peak - base) / field_mb}  # fmt: skip


def bench_s3(spec: StoreSpec) -> list[dict]:
    import boto3
    from moto.server import ThreadedMotoServer

    from dlens.testing.plugin import free_port

    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})  # fmt: skip
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket="bench")
        blocks = generate(spec, seed=0)
        mb = sum(b[3].nbytes for b in blocks) / 1e6
        t_raw = timed(write_raw_s3, blocks, client, "bench")
        t_store = timed(
            write_store,
            blocks,
            "s3://bench/store.zarr",
            spec,
            station_arrays(SyntheticGenerator(spec.domain, 0)),
        )
        return [
            {"case": "raw .npy objects, S3 (moto)", "seconds": t_raw, "MB": mb},
            {
                "case": "store writer, S3 (moto)",
                "seconds": t_store,
                "MB": mb,
                "ratio_to_raw": t_raw / t_store,
            },
        ]
    finally:
        server.stop()


def report(rows: list[dict], spec: StoreSpec, out: Path, memory: dict) -> int:
    """Print the table and the target's verdict, write the JSON; the exit status (0 when the target is met)."""
    print(f"\ningest benchmark: domain {spec.domain.name} {spec.domain.shape}, {len(spec.leads)} leads, 11 members, "
          f"4 species + analyses + stations + meteo; {platform.processor() or platform.machine()}, {_cpus()} CPUs")  # fmt: skip
    print(f"{'case':<44}{'seconds':>9}{'MB':>9}{'MB/s':>9}{'ratio':>8}")
    for r in rows:
        r["MB_per_s"] = None if r["MB"] is None else r["MB"] / r["seconds"]
        ratio = r.get("ratio_to_raw", r.get("ratio_to_first_edition"))
        ratio = "" if ratio is None else f"{ratio:.2f}"
        mb, rate = ("", "") if r["MB"] is None else (f"{r['MB']:.0f}", f"{r['MB_per_s']:.0f}")
        print(f"{r['case']:<44}{r['seconds']:>9.2f}{mb:>9}{rate:>9}{ratio:>8}")
    local = next(r for r in rows if r["case"] == "store writer, local")
    print(f"stored size: {local['stored_MB']:.0f} MB of {local['MB']:.0f} MB (blosc-zstd)")
    print(f"one worker unit (a run, 4 species, {len(spec.leads)} leads, meteo): peak {memory['peak_MB']:.0f} MB RSS, "
          f"{memory['unit_MB']:.0f} MB above its imports = {memory['unit_in_fields']:.0f} fields of {memory['field_MB']:.1f} MB")  # fmt: skip
    full_grid = spec.domain.name == "full"
    writers = [r for r in rows if r["case"].startswith("store writer")]
    for r in writers:
        r["target_met"] = r["ratio_to_raw"] >= WRITER_TARGET
        verdict = (
            ("met" if r["target_met"] else "MISSED") if full_grid else "not judged (target on the full grid)"
        )
        print(f"{r['case']}: {r['ratio_to_raw']:.2f} of raw, target >= {WRITER_TARGET}: {verdict}")
    generation = next(r for r in rows if r["case"] == "generate, second edition")
    generation["target_met"] = generation["ratio_to_first_edition"] <= GENERATION_TARGET
    verdict = (
        ("met" if generation["target_met"] else "MISSED")
        if full_grid
        else "not judged (target on the full grid)"
    )
    print(f"generation: {generation['ratio_to_first_edition']:.2f} × the first edition's time, target <= "
          f"{GENERATION_TARGET}: {verdict}")  # fmt: skip
    passed = not full_grid or (all(r["target_met"] for r in writers) and generation["target_met"])
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {"date": f"{datetime.now():%Y-%m-%d %H:%M}", "command": shlex.join(sys.argv),
                "machine": {"cpus": _cpus(), "platform": platform.platform()},
                "domain": spec.domain.to_attrs(), "leads": list(spec.leads), "rows": rows,
                "worker_memory": memory, "target_ratio": WRITER_TARGET, "target_generation": GENERATION_TARGET,
                "passed": passed}  # fmt: skip
    out.write_text(json.dumps(document, indent=2))
    print(("PASS" if passed else "FAIL") + f"; JSON: {out}")
    return 0 if passed else 1


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
