"""The model registry in the store: `models/<id>/` holds `weights.pt` and `model.json` (DESIGN §3);
entries can also come from bundles (`dlens.model.bundle`: safetensors weights beside the card).

`weights.pt` is a plain state_dict, loaded with `weights_only=True` (no code runs on load); `model.json` (the
model card) holds the training config, the normalisation, the data periods, the input channels and shape, the
code version and the validation scores, and `predictors` the phase-two predictors on, their channels and their
normalisation (an entry from before them has none: it reads none). The config's `data.levels` are the levels
the model reads and predicts (an entry from before them: level 0 alone). It is written last and marks the
entry complete: an entry without it is not listed. Train writes entries; predict and serve read them by id or
`latest`.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from functools import cached_property

import torch
from safetensors.torch import load as load_safetensors

from dlens.common.layout import check_name
from dlens.common.store import list_directory, read_file, write_file
from dlens.model.architectures import FIXED_SHAPE, SpatialNorm, build_ensemble_model, spatial_norm
from dlens.model.features import SURFACE, Normaliser, blocks, channel_names
from dlens.model.head import EnsembleModel
from dlens.model.predictors import PredictorEncoder, Predictors, Standardisation

LOG = logging.getLogger(__name__)
MODELS = "models"
BUNDLE_WEIGHTS = "weights.safetensors"


@dataclass(frozen=True)
class ModelEntry:
    """One model: its id, its card (`model.json`) and, for a bundle, the bundle's location."""

    model_id: str
    card: dict
    bundle: str | None = None

    @property
    def species(self) -> tuple[str, ...]:
        """The species the model predicts (and reads the members of), in order."""
        return tuple(self.card["config"]["data"]["species"])

    @property
    def leads(self) -> tuple[int, ...] | None:
        """The lead hours the model was trained on (None: every lead of its store)."""
        leads = self.card["config"]["data"].get("leads")
        return None if leads is None else tuple(leads)

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels (metres, ascending) the model reads the members of and predicts; (0,) for a card from
        before the levels."""
        return tuple(int(v) for v in self.card["config"]["data"].get("levels", SURFACE))

    @property
    def blocks(self) -> list[tuple[str, int]]:
        """The model's (species, level) blocks, in input and output order (`features.blocks`)."""
        return blocks(self.species, self.levels)

    @property
    def block_species(self) -> tuple[str, ...]:
        """The species of each block (the normalisation each block's members and output go through)."""
        return tuple(sp for sp, _ in self.blocks)

    def block(self, species: str, level: int) -> int:
        """The index of (species, level) among `blocks`; ValueError naming what the model predicts."""
        if species not in self.species:
            raise ValueError(f"model {self.model_id} predicts {', '.join(self.species)}, not {species}")
        if level not in self.levels:
            raise ValueError(
                f"model {self.model_id} predicts levels {', '.join(map(str, self.levels))} m, not {level} m"
            )
        return self.blocks.index((species, level))

    @property
    def normaliser(self) -> Normaliser:
        return Normaliser(**self.card["normaliser"])

    @cached_property
    def predictors(self) -> Predictors:
        """The phase-two predictors the model reads (all off for an entry from before them)."""
        return Predictors.model_validate(self.card["config"]["data"].get("predictors", {}))

    @property
    def meteo_names(self) -> tuple[str, ...]:
        """The meteo variables the model reads, in order, as its card records them (the meteo or the meteo
        change channels), not as the store layout lists them today; none for a model without them."""
        channels = self.card.get("predictors", {}).get("channels", [])
        for prefix in ("meteo:", "meteo_change:"):
            names = tuple(c.removeprefix(prefix) for c in channels if c.startswith(prefix))
            if names:
                return names
        return ()

    @cached_property
    def encoder(self) -> PredictorEncoder:
        """What turns the model's raw predictors into its input channels."""
        recorded = self.card.get("predictors", {}).get("normalisation")
        return PredictorEncoder(
            self.predictors, self.species, Standardisation.from_dict(recorded), self.meteo_names
        )

    def check_inputs(self) -> None:
        """ValueError unless the input channels rebuilt from the card (species, levels, static fields,
        predictors and their meteo variables) are its `input_channels`: the inputs predict and serve assemble
        are the ones the model was trained on."""
        rebuilt = channel_names(
            self.species, self.static_names, self.predictors, self.meteo_names, self.levels
        )
        recorded = list(self.card["input_channels"])
        if rebuilt != recorded:
            at = next(
                (i for i, (a, b) in enumerate(zip(rebuilt, recorded)) if a != b),
                min(map(len, (rebuilt, recorded))),
            )
            got = rebuilt[at] if at < len(rebuilt) else "nothing"
            want = recorded[at] if at < len(recorded) else "nothing"
            raise ValueError(
                f"model {self.model_id}: the {len(rebuilt)} input channels rebuilt from its card differ from "
                f"the {len(recorded)} its input_channels list (channel {at}: {got!r}, recorded {want!r})"
            )

    @property
    def static_names(self) -> tuple[str, ...]:
        """The static input channels the model was trained with, in order."""
        channels = self.card["input_channels"]
        return tuple(c.removeprefix("static:") for c in channels if c.startswith("static:"))

    @property
    def fixed_shape(self) -> tuple[int, int] | None:
        """The only field shape the model takes where its architecture is built for one; else None."""
        if self.card["config"]["model"]["architecture"] in FIXED_SHAPE:
            return tuple(self.card["input_shape"])
        return None

    @property
    def spatial_norm(self) -> SpatialNorm | None:
        """Where the model normalises each sample over space (the smallest fields it takes); else None."""
        model = self.card["config"]["model"]
        return spatial_norm(model["architecture"], model.get("settings"))

    def build(self) -> EnsembleModel:
        """The model's architecture and head, randomly initialised."""
        model = self.card["config"]["model"]
        return build_ensemble_model(
            model["architecture"], model.get("settings"), model["head"], len(self.blocks),
            len(self.card["input_channels"]), tuple(self.card["input_shape"]),
        )  # fmt: skip


def write_entry(url: str, model_id: str, card: dict, state_dict: dict) -> None:
    """Publish weights and card under `models/<model_id>/`: the card (what `entries` lists) last, once the
    weights are stored, so that no reader finds a card without its weights. ValueError for an id that is
    not a safe path component, before anything is written."""
    check_name(model_id, "model id")
    weights = io.BytesIO()
    torch.save(state_dict, weights)
    write_file(url, f"{MODELS}/{model_id}/weights.pt", weights.getvalue())
    write_file(url, f"{MODELS}/{model_id}/model.json", json.dumps(card, indent=2).encode())


def read_card(data: bytes) -> dict:
    """A card from the bytes of `model.json`; ValueError unless they hold a JSON object with its `created`."""
    card = json.loads(data)
    if not isinstance(card, dict) or not isinstance(card.get("created"), str):
        raise ValueError("not a JSON object with a created time")
    return card


def entries(url: str) -> list[ModelEntry]:
    """Every registered model, oldest first; an entry whose card is malformed is left out, with a warning."""
    found = []
    for model_id in list_directory(url, MODELS):
        try:
            found.append(ModelEntry(model_id, read_card(read_file(url, f"{MODELS}/{model_id}/model.json"))))
        except FileNotFoundError:  # a model being published: its card is written last
            continue
        except ValueError as exc:  # not JSON, not UTF-8, not a card
            LOG.warning("registry: model %s left out, its model.json is malformed: %s", model_id, exc)
    return sorted(found, key=lambda e: e.card["created"])


class UnknownModelError(ValueError):
    """A model id that is not in the registry."""


def resolve(url: str, model_id: str) -> ModelEntry:
    """The entry of `model_id` (or the newest for `latest`); UnknownModelError naming the known ids."""
    known = entries(url)
    if model_id == "latest" and known:
        return known[-1]
    for entry in known:
        if entry.model_id == model_id:
            return entry
    ids = ", ".join(e.model_id for e in known) or "none"
    raise UnknownModelError(f"model {model_id!r} is not in the registry of {url!r} (models: {ids})")


def load_model(url: str, entry: ModelEntry) -> EnsembleModel:
    """The model in eval mode: from the registry of `url` (weights_only=True) or from its bundle; ValueError
    when its card's inputs do not rebuild (`ModelEntry.check_inputs`)."""
    entry.check_inputs()
    model = entry.build()
    if entry.bundle is not None:
        state = load_safetensors(read_file(entry.bundle, BUNDLE_WEIGHTS))
    else:
        weights = read_file(url, f"{MODELS}/{entry.model_id}/weights.pt")
        state = torch.load(io.BytesIO(weights), weights_only=True)
    model.load_state_dict(state)
    return model.eval()
