"""Publishing a trained model to the store's registry (`dlens.common.model.registry` reads it back).

The card (`model.json`) holds the validated training config, the normalisation, the data periods, the
input channels and shape, the code version and the validation scores.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dlens.common.model.features import Normaliser
from dlens.common.model.registry import write_entry
from dlens.common.version import code_version
from dlens.train.config import TrainConfig
from dlens.train.loop import input_channels


def publish(
    url: str,
    config: TrainConfig,
    normaliser: Normaliser,
    state_dict: dict,
    shape: tuple[int, int],
    scores: dict,
) -> str:
    """Write a model to the registry; return its id (`<config name>-<UTC time>`)."""
    created = datetime.now(UTC)
    model_id = f"{config.name}-{created:%Y%m%dt%H%M%S}".lower()
    card = {
        "id": model_id,
        "created": created.isoformat(timespec="seconds"),
        "architecture": config.model.architecture,
        "config": config.model_dump(mode="json"),
        "normaliser": {"log1p_mean": normaliser.log1p_mean, "log1p_std": normaliser.log1p_std},
        "input_channels": input_channels(config),
        "input_shape": list(shape),
        "periods": {
            k: getattr(config.data, k).model_dump(mode="json") for k in ("train", "validation", "test")
        },
        "code_version": code_version("dlens-train"),
        "validation": scores,
    }
    write_entry(url, model_id, card, state_dict)
    return model_id
