"""`make mlflow-ui` serves the runs of the local file store: a real MLflow server, a real client over HTTP,
the way a team's shared tracking server is used."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from mlflow.tracking import MlflowClient

from dlens.testing.plugin import free_port
from dlens.train.tracking import MODEL_ID_TAG, tracked_fit

REPO = Path(__file__).resolve().parents[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"make mlflow-ui exited {process.returncode}: {process.stdout.read()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_make_mlflow_ui_serves_the_runs_of_the_file_store(tmp_path, monkeypatch):
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(store))  # a plain directory, as a user would give it
    config = {"name": "ui", "optim": {"epochs": 2, "learning_rate": 0.001}}
    with tracked_fit(config, "ui-run") as run:
        for epoch in (1, 2):
            run.log_epoch({"epoch": epoch, "val_loss": 1.0 / epoch, "train_loss": 2.0 / epoch})
        run.published("ui-20260101t000000")
    port = free_port()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "mlflow-ui", f"MLRUNS={store}", f"MLFLOW_PORT={port}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", process)
        remote = MlflowClient(f"http://127.0.0.1:{port}")
        experiment = remote.get_experiment_by_name("dlens")
        (found,) = remote.search_runs(
            [experiment.experiment_id], filter_string=f"tags.`{MODEL_ID_TAG}` = 'ui-20260101t000000'"
        )
        assert found.info.run_id == run.run_id and found.data.params["optim.learning_rate"] == "0.001"
        history = remote.get_metric_history(run.run_id, "val_loss")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(1, 1.0), (2, 0.5)]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert b"MLflow" in page.read()  # the UI itself, not only the REST API
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
