"""`make demo` as a newcomer runs it: a fresh clone of this repository in a temporary folder, its own
venv from `make setup`, the whole pipeline to the end under CI=true (the tiny domain and the smoke
config keep it to minutes), and every step's output where the demo says it is."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import zarr

from dlens.testing.plugin import free_port

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "DAYS=6",
    "DOMAIN=tiny",
    "TRAIN_CONFIG=configs/train/smoke.yaml",
    "TEST_START=2025-07-05",
    "TEST_DAYS=2",
]


@pytest.mark.slow
def test_make_demo_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "dlens"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    # Nothing of this session leaks in: no Ray address, no venv, no S3 endpoint of the test fixtures.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_", "VIRTUAL_ENV", "DLENS_"))}
    env["CI"] = "true"
    port = free_port()
    # Both streams into one file, as `make demo > demo.log 2>&1` or a CI log has them (a `tee /dev/stderr`
    # once reopened that file and truncated what the demo had written before).
    log_file = tmp_path / "demo.log"
    with log_file.open("w") as out:
        done = subprocess.run(
            ["make", "demo", *SMALL, f"SERVE_PORT={port}"], cwd=clone, env=env, stdout=out,
            stderr=subprocess.STDOUT, timeout=1800,
        )  # fmt: skip
    log = log_file.read_text(errors="replace")
    assert done.returncode == 0, log[-5000:]
    steps = [log.find(f"== demo {k}/6 ") for k in range(1, 7)]
    assert -1 not in steps and steps == sorted(steps), "every step announced, in order"

    store = clone / "data" / "demo.zarr"
    model = re.search(r"(?:^|\r)model: (\S+)", log, re.MULTILINE).group(1)
    root = zarr.open_group(store, mode="r")
    assert {"forecasts", "analysis"} <= set(root.group_keys())
    assert f"dlens-{model}" in root["products"] and f"dlens-{model}-early" in root["products"]
    assert (clone / "data" / "demo_no2.png").stat().st_size > 10_000
    assert (store / "models" / model).is_dir()

    report = clone / "data" / "demo-report"
    assert f"demo report: file://{report}/index.html" in log
    metrics = json.loads((report / "metrics.json").read_text())
    products = {r["product"] for r in metrics["continuous"]}
    expected = {
        f"dlens-{model}",
        f"dlens-{model}-early",
        "median",
        "median-early",
        "weighted",
        "mos",
        "emos",
        "persistence",
    }
    assert expected <= products
    assert "<table" in (report / "index.html").read_text()

    # dlens-serve prints the curl line only once that very request has answered with a field.
    assert f"serving model {model}" in log and "dlens-serve: stopping" in log
    assert f"try: curl -s 'http://127.0.0.1:{port}/v1/forecast/" in log
