"""Run every benchmark of docs/benchmarks.md, one after the other, and fail if any missed its target.

Each benchmark prints its own table and writes its own JSON under bench/results/; this runner
streams their output, then prints one summary row per benchmark (its exit status says whether it
met its targets) and writes bench/results/summary.json. Unlike a Makefile recipe it does not stop
at the first missed target: every benchmark runs, and the exit status is 1 if any missed.

    uv run python bench/run_all.py [--only skill,serve]      # = make bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS: dict[str, list[str]] = {
    "synthetic": ["bench/synthetic.py"],
    "ingest": ["bench/ingest.py", "--s3"],
    "evaluate": ["bench/evaluate.py"],
    "skill": ["bench/skill.py"],
    "train_throughput": ["bench/train_throughput.py"],
    "train_throughput_patches": [
        "bench/train_throughput.py",
        "--domain",
        "full",
        "--config",
        "configs/train/patches.yaml",
        "--architectures",
        "HalfUNet",
        "--batches",
        "20",
        "--json",
        "bench/results/train_throughput-patches.json",
    ],
    "predict": ["bench/predict.py"],
    "architectures": ["bench/architectures.py", "--quick"],
    "serve": ["bench/serve.py"],
    "serve_failover": ["bench/serve_failover.py"],
    # the ablation and the one-or-many comparison share their stores and members-only models
    "predictors": ["bench/predictors.py", "--workdir", "data/bench-phase2"],
    "models": ["bench/models.py", "--workdir", "data/bench-phase2"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated names: " + ", ".join(BENCHMARKS)
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "summary.json")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")

    rows = []
    for name in names:
        command = [sys.executable, *BENCHMARKS[name]]
        print(f"\n== bench {name}: {shlex.join(['python', *BENCHMARKS[name]])}", flush=True)
        start = time.perf_counter()
        status = subprocess.run(command, cwd=REPO).returncode
        rows.append({"benchmark": name, "command": shlex.join(["uv", "run", "python", *BENCHMARKS[name]]),
                     "exit_status": status, "met": status == 0, "minutes": (time.perf_counter() - start) / 60})  # fmt: skip

    print(f"\n{'benchmark':<18}{'minutes':>9}  targets")
    for r in rows:
        verdict = "met" if r["met"] else f"MISSED (exit status {r['exit_status']})"
        print(f"{r['benchmark']:<18}{r['minutes']:>9.1f}  {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": f"{datetime.now():%Y-%m-%d %H:%M}",
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform()},
        "benchmarks": rows,
    }, indent=1))  # fmt: skip
    missed = [r["benchmark"] for r in rows if not r["met"]]
    print(f"JSON: {args.out}")
    if missed:
        print(f"make bench: target missed by {', '.join(missed)}", file=sys.stderr)
        return 1
    print("make bench: every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
