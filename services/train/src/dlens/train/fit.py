"""`dlens-train fit`: one Ray Train TorchTrainer run, tracked in MLflow, then the best checkpoint published to
the registry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import ray.train
import torch
from ray.train.torch import TorchConfig, TorchTrainer
from ray.util.queue import Queue

from dlens.common.parallel import ensure_ray
from dlens.common.store import absolute_url
from dlens.model.features import Normaliser
from dlens.model.predictors import Standardisation
from dlens.train.config import TrainConfig
from dlens.train.dataset import StoreDataset, store_normaliser
from dlens.train.loop import CHECKPOINT_FILE, train_loop
from dlens.train.predictor_stats import store_standardisation
from dlens.train.progress import epoch_progress, epoch_queue
from dlens.train.registry import publish
from dlens.train.tracking import tracked_fit

#: Ray Train restarts the worker group this many times (from the latest checkpoint) before giving up.
MAX_FAILURES = 3


def make_trainer(
    url: str,
    config: TrainConfig,
    normaliser: Normaliser,
    standardisation: Standardisation,
    workers: int,
    gpu: bool,
    storage: str,
    run_name: str | None = None,
    callbacks: list | None = None,
    progress: Queue | None = None,
) -> TorchTrainer:
    """The TorchTrainer of a run: DDP over `workers` (gloo on CPU, NCCL on GPU), checkpoints in `storage`;
    `normaliser` and `standardisation` (the meteo predictors') as computed once by the caller.

    `run_name` defaults to the config's name; `callbacks` receive the run's reports (a sweep's Tune bridge);
    rank 0 puts each epoch's metrics on `progress`.
    """
    params = {
        "store": absolute_url(url),
        "progress": progress,
        "config": config.model_dump(mode="json"),
        "normaliser": {"log1p_mean": normaliser.log1p_mean, "log1p_std": normaliser.log1p_std},
        "standardisation": standardisation.to_dict(),
    }
    return TorchTrainer(
        train_loop,
        train_loop_config=params,
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=gpu),
        run_config=ray.train.RunConfig(
            name=run_name or config.name,
            storage_path=absolute_url(storage),
            callbacks=callbacks,
            failure_config=ray.train.FailureConfig(max_failures=MAX_FAILURES),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute="val_loss", checkpoint_score_order="min"
            ),
        ),
    )


def fit(
    url: str, config: TrainConfig, workers: int = 1, gpu: bool = False, storage: str | None = None
) -> str:
    """Train, publish the best checkpoint, return the model id."""
    ensure_ray(dashboard=True)
    normaliser = store_normaliser(url, config.data.train)
    # the meteo predictors' statistics, computed once: the workers train with them and the card records them
    standardisation = store_standardisation(url, config.data.train, config.data.predictors)
    # fails fast, before any worker starts
    shape = StoreDataset(url, config.data, "train", normaliser, standardisation).shape
    storage = storage or str(Path("data/ray-results").resolve())
    # A fresh run name: under a reused one, Ray Train would resume that earlier run's checkpoints.
    run_name = f"{config.name}-{datetime.now(UTC):%Y%m%dt%H%M%S}"
    progress = epoch_queue()
    with tracked_fit(config.model_dump(mode="json"), run_name) as tracked:
        with epoch_progress(progress, config.optim.epochs, config.name, on_epoch=tracked.log_epoch):
            trainer = make_trainer(
                url, config, normaliser, standardisation, workers, gpu, storage, run_name, progress=progress
            )
            result = trainer.fit()
        if result.error:
            raise RuntimeError(f"training failed: {result.error}")
        model_id = publish_best(url, config, normaliser, standardisation, shape, result, tracked.run_id)
        tracked.published(model_id)
    return model_id


def publish_best(
    url: str,
    config: TrainConfig,
    normaliser: Normaliser,
    standardisation: Standardisation,
    shape: tuple[int, int],
    result: ray.train.Result,
    tracking_run: str | None = None,
) -> str:
    """Publish the checkpoint of `result` with the lowest validation loss; return the model id."""
    best = result.get_best_checkpoint(metric="val_loss", mode="min")
    if best is None:
        raise RuntimeError("the run reported no checkpoint")
    with best.as_directory() as directory:
        state = torch.load(Path(directory) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    metrics = next(m for c, m in result.best_checkpoints if c.path == best.path)
    scores = {**metrics, "last": dict(result.metrics)}  # `last.start_epoch` > 0 after a resume
    return publish(url, config, normaliser, standardisation, state["model"], shape, scores, tracking_run)
