"""`dlens-train tune` on the local cluster: a two-trial sweep, interrupted and resumed, publishes its best."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from dlens.model.registry import resolve
from dlens.testing.mock_store import build_mock_store
from dlens.train.cli import main
from dlens.train.tracking import client as tracking_client
from dlens.train.tracking import experiment_id, runs_of_model

EPOCHS = 2
TRAIN = {
    "name": "sweep-base",
    "data": {
        "species": ["o3"],
        "train": {"start": "2025-03-01", "end": "2025-03-04"},
        "validation": {"start": "2025-03-05", "end": "2025-03-05"},
        "test": {"start": "2025-03-06", "end": "2025-03-06"},
    },
    "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}},
    "optim": {"epochs": EPOCHS, "batch_size": 4},
}
SWEEP = {
    "name": "two-trials",
    "base": "train.yaml",
    "samples": 2,
    "grace_epochs": EPOCHS,  # ASHA keeps both trials to the end: the test counts their epochs
    "models": [{"architecture": "HalfUNet", "settings": {"num_filters": 8}}],
    "learning_rate": [0.001, 0.01],
}


def _results(experiment: Path) -> dict[str, list[dict]]:
    """Each trial's reported results, by trial directory name."""
    out = {}
    for path in experiment.glob("run_trial_*/result.json"):
        out[path.parent.name] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return out


def _wait_for_a_finished_trial(experiment: Path, process: subprocess.Popen, timeout: float = 400) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if any(len(r) >= EPOCHS for r in _results(experiment).values()):
            return
        time.sleep(0.5)
    raise AssertionError(f"no trial finished within {timeout} s (sweep exit status {process.poll()})")


@pytest.mark.slow
def test_interrupted_sweep_resumes_and_publishes_its_best(tmp_path, ray_cluster, capsys, monkeypatch):
    store = str(tmp_path / "mock.zarr")
    build_mock_store(store, datetime(2025, 3, 1), days=6, leads=(0, 24))
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(TRAIN))
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(SWEEP))
    storage = tmp_path / "ray"
    experiment = storage / SWEEP["name"]
    command = [str(Path(sys.executable).parent / "dlens-train"), "--no-progress", "tune",
               "--store", store, "--config", str(sweep_file), "--storage", str(storage)]  # fmt: skip

    interrupted = subprocess.Popen(
        command, env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    _wait_for_a_finished_trial(experiment, interrupted)
    interrupted.send_signal(signal.SIGINT)
    output, _ = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 1, output[-3000:]
    assert "--resume" in output  # the interrupted sweep says how to go on, and publishes nothing
    before = _results(experiment)
    finished = [name for name, results in before.items() if len(results) >= EPOCHS]
    assert len(finished) == 1 and len(before) <= 2

    # As in a new process, whatever tests ran before in this one: the file store not yet allowed.
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    assert main(["--no-progress", "tune", "--store", store, "--config", str(sweep_file),
                 "--storage", str(storage), "--resume"]) == 0  # fmt: skip
    model_id = capsys.readouterr().out.split("model: ")[1].split()[0]
    after = _results(experiment)
    assert len(after) == 2 and all(len(r) == EPOCHS for r in after.values())
    assert after[finished[0]] == before[finished[0]]  # the finished trial was not run again
    best = min(after.values(), key=lambda results: min(r["val_loss"] for r in results))
    card = resolve(store, model_id).card
    assert card["validation"]["val_loss"] == pytest.approx(min(r["val_loss"] for r in best))
    # Tune's MLflow logger made one run per trial, every epoch logged; the published trial carries the id.
    mlflow = tracking_client()
    trials = mlflow.search_runs([experiment_id(mlflow)], filter_string="tags.`dlens.sweep` = 'two-trials'")
    assert len({r.data.tags["trial_name"] for r in trials}) == 2
    (published,) = runs_of_model(model_id)
    assert (
        card["mlflow_run_id"] == published.info.run_id and published.data.tags["dlens.sweep"] == "two-trials"
    )
    epochs = {m.step for r in trials if r.data.tags["trial_name"] == published.data.tags["trial_name"]
              for m in mlflow.get_metric_history(r.info.run_id, "val_loss")}  # fmt: skip
    assert epochs == set(range(1, EPOCHS + 1))  # over its runs: a trial resumed mid-run goes on in a new one


def test_resume_without_a_sweep_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(TRAIN))
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(SWEEP))
    store = str(tmp_path / "mock.zarr")
    build_mock_store(store, datetime(2025, 3, 1), days=6, leads=(0,))
    code = main(
        ["tune", "--store", store, "--config", str(sweep_file), "--storage", str(tmp_path), "--resume"]
    )
    assert code == 2 and "no sweep to resume" in capsys.readouterr().err
