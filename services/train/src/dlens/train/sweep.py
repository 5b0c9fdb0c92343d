"""`dlens-train tune`: a Ray Tune sweep (ASHA) whose trials are Ray Train runs; the best is published.

The sweep file (`configs/tune/<name>.yaml`) names a base training config and what varies:
architectures with their widths, the learning-rate range, member dropout and the static inputs.
Each trial builds its TrainConfig from the base and its sample, and runs a TorchTrainer whose
reports reach Tune (`TuneReportCallback`), so ASHA stops poor trials early; Tune's MLflow logger records
each trial (parameters, every epoch) and the published trial's run gets the model id. An interrupted
sweep resumes from the Tune experiment directory.
"""

from __future__ import annotations

from pathlib import Path

import ray.train
import ray.tune
import yaml
from pydantic import Field
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler

from dlens.common.parallel import ensure_ray
from dlens.common.store import absolute_url
from dlens.model.features import Normaliser
from dlens.model.predictors import Standardisation
from dlens.train.config import ModelConfig, Name, TrainConfig, _Strict, load_config
from dlens.train.dataset import StoreDataset, store_normaliser
from dlens.train.fit import make_trainer, publish_best
from dlens.train.predictor_stats import store_standardisation
from dlens.train.tracking import sweep_callback, tag_published, trial_run

METRIC, MODE = "val_loss", "min"


class SweepConfig(_Strict):
    """A sweep: the base config, the search space, and how many trials."""

    name: Name = Field(description="the sweep's name (its directory under --storage, the model id's prefix)")
    base: str = Field(description="training config, relative to the sweep file")
    samples: int = Field(4, ge=1, description="trials")
    max_concurrent: int = Field(1, ge=1, description="trials running at once")
    workers_per_trial: int = Field(1, ge=1, description="DDP workers of each trial")
    grace_epochs: int = Field(1, ge=1, description="ASHA: epochs before a trial can be stopped")
    models: list[ModelConfig] = Field(min_length=1, description="model sections to choose from")
    learning_rate: tuple[float, float] | None = Field(None, description="log-uniform range")
    member_dropout: tuple[float, float] | None = Field(None, description="uniform range")
    static: list[bool] | None = Field(None, description="choices for the static input channels")


def load_sweep(path: Path) -> tuple[SweepConfig, TrainConfig]:
    """The sweep and its base training config; ValueError naming the file on any problem."""
    try:
        sweep = SweepConfig.model_validate(yaml.safe_load(Path(path).read_text()))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return sweep, load_config(Path(path).parent / sweep.base)


def search_space(sweep: SweepConfig) -> dict:
    space: dict = {"model": ray.tune.choice([m.model_dump(mode="json") for m in sweep.models])}
    if sweep.learning_rate:
        space["learning_rate"] = ray.tune.loguniform(*sweep.learning_rate)
    if sweep.member_dropout:
        space["member_dropout"] = ray.tune.uniform(*sweep.member_dropout)
    if sweep.static:
        space["static"] = ray.tune.choice(sweep.static)
    return space


def trial_config(base: TrainConfig, sample: dict) -> TrainConfig:
    """The base config with one trial's sample applied (validated again)."""
    raw = base.model_dump(mode="json")
    raw["model"] = sample["model"]
    if "learning_rate" in sample:
        raw["optim"]["learning_rate"] = sample["learning_rate"]
    for key in ("member_dropout", "static"):
        if key in sample:
            raw["data"][key] = sample[key]
    return TrainConfig.model_validate(raw)


def run_trial(params: dict) -> None:
    """One Tune trial: a Ray Train run of the sampled config, reporting to Tune."""
    config = trial_config(TrainConfig.model_validate(params["base"]), params)
    normaliser = Normaliser(**params["normaliser"])
    standardisation = Standardisation.from_dict(params["standardisation"])
    trial_id = ray.tune.get_context().get_trial_id()
    trainer = make_trainer(
        params["store"], config, normaliser, standardisation, params["workers"], False, params["storage"],
        run_name=trial_id, callbacks=[TuneReportCallback()],
    )  # fmt: skip
    trainer.fit()


def tune(url: str, sweep: SweepConfig, base: TrainConfig, storage: str, resume: bool = False) -> str:
    """Run (or resume) the sweep, publish the best trial's best checkpoint, return its model id."""
    ensure_ray(dashboard=True)
    normaliser = store_normaliser(url, base.data.train)
    # once for every trial (they share the base config's predictors and training period) and the card
    standardisation = store_standardisation(url, base.data.train, base.data.predictors)
    shape = StoreDataset(url, base.data, "train", normaliser, standardisation).shape  # fails fast
    experiment = Path(storage).resolve() / sweep.name
    # The trial function only drives its Train workers, which hold the CPUs.
    trainable = ray.tune.with_resources(run_trial, {"cpu": 0.1})
    if resume:
        if not ray.tune.Tuner.can_restore(str(experiment)):
            raise ValueError(f"no sweep to resume at {experiment}")
        tuner = ray.tune.Tuner.restore(str(experiment), trainable, resume_errored=True)
    else:
        if experiment.exists():
            raise ValueError(
                f"a sweep named {sweep.name!r} exists at {experiment}: add --resume, or rename it"
            )
        params = {
            "base": base.model_dump(mode="json"), "store": absolute_url(url),
            "storage": str(experiment / "runs"), "workers": sweep.workers_per_trial,
            "normaliser": {"log1p_mean": normaliser.log1p_mean, "log1p_std": normaliser.log1p_std},
            "standardisation": standardisation.to_dict(),
            **search_space(sweep),
        }  # fmt: skip
        asha = ASHAScheduler(time_attr="epoch", max_t=base.optim.epochs, grace_period=sweep.grace_epochs)
        tuner = ray.tune.Tuner(
            trainable,
            param_space=params,
            tune_config=ray.tune.TuneConfig(
                metric=METRIC,
                mode=MODE,
                num_samples=sweep.samples,
                max_concurrent_trials=sweep.max_concurrent,
                scheduler=asha,
            ),
            run_config=ray.tune.RunConfig(
                name=sweep.name,
                storage_path=str(Path(storage).resolve()),
                callbacks=[sweep_callback(sweep.name)],
            ),
        )
    results = tuner.fit()
    # The state saved on disk tells an interrupted sweep: in memory, Tune marks pending trials terminated.
    trials = ray.tune.ExperimentAnalysis(str(experiment)).trials
    statuses = [trial.status for trial in trials]
    if statuses.count("TERMINATED") < len(statuses):
        raise RuntimeError(
            f"sweep {sweep.name!r} stopped with {statuses.count('TERMINATED')} of {len(statuses)} trials "
            f"finished ({statuses.count('ERROR')} failed): rerun with --resume to go on"
        )
    best = results.get_best_result(metric=METRIC, mode=MODE)
    if best.metrics is None or METRIC not in best.metrics:
        raise RuntimeError(f"no trial of sweep {sweep.name!r} reported {METRIC}")
    config = trial_config(base, best.config)
    train_run = ray.train.Result.from_path(str(Path(best.config["storage"]) / best.metrics["trial_id"]))
    (trial,) = [t for t in trials if t.trial_id == best.metrics["trial_id"]]
    tracked = trial_run(sweep.name, str(trial))
    model_id = publish_best(url, config, normaliser, standardisation, shape, train_run, tracked)
    if tracked is not None:
        tag_published(tracked, model_id)
    return model_id
