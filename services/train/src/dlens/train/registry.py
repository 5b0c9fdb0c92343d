"""The model registry in the store: `models/<id>/` holds `weights.pt` and `model.json`.

`weights.pt` is a plain state_dict (loaded with `weights_only=True`: no code runs on load);
`model.json` holds the validated training config, the normalisation, the data periods, the input
channels, the code version and the validation scores. Serve and predict take a model id or
`latest`.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from dlens.common.store import list_directory, put_directory, read_file
from dlens.common.version import code_version
from dlens.train.config import TrainConfig
from dlens.train.features import Normaliser
from dlens.train.loop import input_channels, make_model

MODELS = "models"


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its id and everything in its `model.json`."""

    model_id: str
    card: dict

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.model_validate(self.card["config"])

    @property
    def normaliser(self) -> Normaliser:
        return Normaliser(**self.card["normaliser"])

    @property
    def static_names(self) -> tuple[str, ...]:
        """The static input channels the model was trained with, in order."""
        channels = self.card["input_channels"]
        return tuple(c.removeprefix("static:") for c in channels if c.startswith("static:"))


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
    with tempfile.TemporaryDirectory() as directory:
        torch.save(state_dict, Path(directory) / "weights.pt")
        (Path(directory) / "model.json").write_text(json.dumps(card, indent=2))
        put_directory(Path(directory), url, f"{MODELS}/{model_id}")
    return model_id


def entries(url: str) -> list[ModelEntry]:
    """Every registered model, oldest first."""
    found = []
    for model_id in list_directory(url, MODELS):
        try:
            found.append(ModelEntry(model_id, json.loads(read_file(url, f"{MODELS}/{model_id}/model.json"))))
        except FileNotFoundError:  # a model being published: weights and card not both there yet
            continue
    return sorted(found, key=lambda e: e.card["created"])


def resolve(url: str, model_id: str) -> ModelEntry:
    """The entry of `model_id` (or the newest for `latest`); ValueError naming the known ids."""
    known = entries(url)
    if model_id == "latest" and known:
        return known[-1]
    for entry in known:
        if entry.model_id == model_id:
            return entry
    ids = ", ".join(e.model_id for e in known) or "none"
    raise ValueError(f"model {model_id!r} is not in the registry of {url!r} (models: {ids})")


def load_model(url: str, entry: ModelEntry) -> torch.nn.Module:
    """The registered model in eval mode, weights loaded with weights_only=True."""
    model = make_model(entry.config, tuple(entry.card["input_shape"]), len(entry.card["input_channels"]))
    state = torch.load(io.BytesIO(read_file(url, f"{MODELS}/{entry.model_id}/weights.pt")), weights_only=True)
    model.load_state_dict(state)
    return model.eval()
