"""Experiment tracking in MLflow: every `fit` and every sweep trial is an MLflow run.

A fit's run holds the training config (flattened as parameters, and whole as `config.yaml`), the metrics of
every epoch (step = epoch) and, once published, the model id (tag `dlens.model_id`); the registry card records
the run id. A sweep's trials are logged by Ray Tune's `MLflowLoggerCallback` (parameters, every reported
epoch); the published trial's run gets the model id tag. Where runs go: `DLENS_MLFLOW_TRACKING_URI`, else
`MLFLOW_TRACKING_URI`, else a local file store under `data/mlruns` (`make mlflow-ui` shows it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from ray.air.integrations.mlflow import MLflowLoggerCallback

from dlens.common.config import get_settings

#: The tag that names the model a run published.
MODEL_ID_TAG = "dlens.model_id"
#: The tag that says what made a run: "fit" or "tune".
KIND_TAG = "dlens.kind"
DEFAULT_STORE = Path("data/mlruns")
#: MLflow takes at most this many parameters or metrics per batch call.
BATCH = 100


def tracking_uri() -> str:
    """The MLflow tracking URI of this process (a local directory becomes an absolute file: URI)."""
    uri = get_settings().mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or str(DEFAULT_STORE)
    if "://" not in uri and not uri.startswith("file:"):
        uri = Path(uri).resolve().as_uri()
    if uri.startswith("file:"):
        # MLflow ≥ 3.7 keeps the file store for compatibility only and wants it asked for explicitly.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def client() -> MlflowClient:
    return MlflowClient(tracking_uri())


def experiment_id(mlflow: MlflowClient, name: str | None = None) -> str:
    """The id of the experiment `name` (default: the settings'), created when missing."""
    name = name or get_settings().mlflow_experiment
    experiment = mlflow.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else mlflow.create_experiment(name)


def flatten(values: dict, prefix: str = "") -> dict[str, str]:
    """Nested config values as MLflow parameters: dotted keys, values as text."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


@dataclass
class TrackedRun:
    """An open MLflow run of a fit."""

    mlflow: MlflowClient
    run_id: str

    def log_epoch(self, metrics: dict) -> None:
        """Every numeric metric of one epoch, at step = the epoch number."""
        step = int(metrics["epoch"])
        values = [
            Metric(key, float(value), 0, step)
            for key, value in metrics.items()
            if key != "epoch" and isinstance(value, int | float)
        ]
        for start in range(0, len(values), BATCH):
            self.mlflow.log_batch(self.run_id, metrics=values[start : start + BATCH])

    def published(self, model_id: str) -> None:
        self.mlflow.set_tag(self.run_id, MODEL_ID_TAG, model_id)


@contextmanager
def tracked_fit(config: dict, run_name: str) -> Iterator[TrackedRun]:
    """An MLflow run around a fit: the config logged first; FINISHED at the end, FAILED on an exception."""
    mlflow = client()
    run = mlflow.create_run(
        experiment_id(mlflow), run_name=run_name, tags={KIND_TAG: "fit", "dlens.config": config["name"]}
    )
    run_id = run.info.run_id
    params = [Param(key, value) for key, value in flatten(config).items()]
    for start in range(0, len(params), BATCH):
        mlflow.log_batch(run_id, params=params[start : start + BATCH])
    mlflow.log_dict(run_id, config, "config.yaml")
    try:
        yield TrackedRun(mlflow, run_id)
    except BaseException:
        mlflow.set_terminated(run_id, "FAILED")
        raise
    mlflow.set_terminated(run_id, "FINISHED")


class EpochMLflowLogger(MLflowLoggerCallback):
    """Ray Tune's MLflow logger with the trial's epoch as the step (a resumed trial continues its epochs)."""

    def setup(self, *args, **kwargs) -> None:
        tracking_uri()  # a sweep restored in a new process brings this logger, not the file store's consent
        super().setup(*args, **kwargs)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        step = int(result.get("epoch", iteration))
        self.mlflow_util.log_metrics(run_id=self._trial_runs[trial], metrics_to_log=result, step=step)


def sweep_callback(sweep: str) -> EpochMLflowLogger:
    """The MLflow logger of the trials of `sweep` (one run per trial, tagged with the sweep)."""
    return EpochMLflowLogger(
        tracking_uri=tracking_uri(),
        experiment_name=get_settings().mlflow_experiment,
        tags={KIND_TAG: "tune", "dlens.sweep": sweep},
    )


def trial_run(sweep: str, trial_name: str) -> str | None:
    """The MLflow run id of one trial of `sweep` (`trial_name`: Tune's str(trial)), if it was logged; the
    latest, where a resumed sweep logged the trial's rest in a run of its own."""
    mlflow = client()
    runs = mlflow.search_runs(
        [experiment_id(mlflow)],
        filter_string=f"tags.`dlens.sweep` = '{sweep}' and tags.trial_name = '{trial_name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def tag_published(run_id: str, model_id: str) -> None:
    client().set_tag(run_id, MODEL_ID_TAG, model_id)


def runs_of_model(model_id: str) -> list:
    """The MLflow runs that published `model_id` (one, normally)."""
    mlflow = client()
    return mlflow.search_runs([experiment_id(mlflow)], filter_string=f"tags.`{MODEL_ID_TAG}` = '{model_id}'")
