"""Publishing a trained model to the store's registry (`dlens.model.registry` reads it back).

The card (`model.json`) holds the validated training config, the normalisation, the data periods, the levels
(also `config.data.levels`), the input channels and shape, the code version, the validation scores, the MLflow
run id and the phase-two predictors: those on, their channels, their normalisation.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dlens.common.version import code_version
from dlens.model.features import Normaliser, block_labels
from dlens.model.predictors import Predictors, Standardisation, encoded_names, statistics_names
from dlens.model.registry import write_entry
from dlens.train.config import TrainConfig
from dlens.train.loop import input_channels


def new_model_id(config: TrainConfig, created: datetime) -> str:
    """A model's id: `<config name>-<UTC time>`."""
    return f"{config.name}-{created:%Y%m%dt%H%M%S}".lower()


def publish(
    url: str,
    config: TrainConfig,
    normaliser: Normaliser,
    standardisation: Standardisation,
    state_dict: dict,
    shape: tuple[int, int],
    scores: dict,
    tracking_run: str | None = None,
) -> str:
    """Write a model to the registry; return its id. `standardisation`: the meteo predictors' the model
    trained with; `tracking_run`: the MLflow run that trained it."""
    created = datetime.now(UTC)
    model_id = new_model_id(config, created)
    card = {
        "id": model_id,
        "created": created.isoformat(timespec="seconds"),
        "architecture": config.model.architecture,
        "target": config.data.target,
        "levels": list(config.data.levels),
        "config": config.model_dump(mode="json"),
        "normaliser": {"log1p_mean": normaliser.log1p_mean, "log1p_std": normaliser.log1p_std},
        "input_channels": input_channels(config),
        "input_shape": list(shape),
        "periods": {
            k: getattr(config.data, k).model_dump(mode="json") for k in ("train", "validation", "test")
        },
        "code_version": code_version("dlens-train"),
        "validation": scores,
        "mlflow_run_id": tracking_run,
        "predictors": predictors_card(config, standardisation),
    }
    write_entry(url, model_id, card, state_dict)
    return model_id


def predictors_card(config: TrainConfig, standardisation: Standardisation) -> dict:
    """The card's record of the phase-two predictors: those on, their channels and normalisation."""
    predictors: Predictors = config.data.predictors
    species = config.data.species
    labels = block_labels(species, config.data.levels)
    return {
        "enabled": list(predictors.enabled),
        "channels": statistics_names(labels, predictors) + encoded_names(species, predictors),
        "analysis_hours_before_run": list(predictors.analysis_hours) if predictors.recent_analysis else [],
        "dropout": predictors.dropout,
        "normalisation": {
            **standardisation.to_dict(),
            "recent_analysis": "the members' log1p normalisation of each species (normaliser)",
            "statistics": "in the members' normalised units; 0 where no member is present",
            "zenith": "cos of the solar zenith angle, unscaled",
        },
    }
