"""mfai models built by name from JSON/YAML-friendly settings.

The six architectures are imported directly, each only when it is built (mfai's `load_model_registry()`
imports every model module and needs extra packages; SwinUNetR pulls monai and DeepLabV3Plus torchvision,
seconds of start-up that a HalfUNet's trainer, loader and serve processes need not pay). `build_model`
turns a plain settings dict into the architecture's settings dataclass: unknown keys are refused, lists
become tuples for tuple-typed fields, autopadding is on unless set explicitly (inputs of any size), and
DeepLabV3Plus never loads pretrained weights (no download at run time).
UNetRPP's attention dropout is switched off in eval mode (`_TrainOnlyDropout`, an mfai 9.0.1 bug).
`spatial_norm` says, from the settings alone, where a network normalises each sample over space (an instance
norm, which needs more than one cell at its level): the smallest fields it takes.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from typing import Any

import torch

from dlens.model.head import EnsembleModel, Head, head_channels

#: Architecture name -> the mfai module that defines the class of that name.
ARCHITECTURES: dict[str, str] = {
    "UNet": "mfai.pytorch.models.unet",
    "HalfUNet": "mfai.pytorch.models.half_unet",
    "DeepLabV3Plus": "mfai.pytorch.models.deeplabv3",
    "Segformer": "mfai.pytorch.models.segformer",
    "SwinUNetR": "mfai.pytorch.models.swinunetr",
    "UNetRPP": "mfai.pytorch.models.unetrpp",
}

#: Architectures whose deepest level can hold an instance norm: name -> (the downsampling of that level, the
#: settings key choosing the norm, its default). SwinUNetR (monai): a patch embedding and four patch mergings
#: each halve the field (1/32), and its `norm_name` (instance by default) normalises there. The others' batch
#: and layer norms normalise over the batch or the channels (any field goes in eval mode), but UNetRPP's
#: instance norms, which need no entry: it takes only the shape it was built (and trained) for.
SPATIAL_NORM_LEVELS: dict[str, tuple[int, str, str]] = {"SwinUNetR": (2**5, "norm_name", "instance")}

#: Architectures built for one input shape (the registry card's `input_shape`); the others take any size.
FIXED_SHAPE = frozenset({"UNetRPP"})

#: Settings for a small, CPU-friendly model per architecture (tests, demo config); lists keep them YAML-safe.
SMALL_SETTINGS: dict[str, dict[str, Any]] = {
    "UNet": {"init_features": 8},
    "HalfUNet": {"num_filters": 16},
    "DeepLabV3Plus": {"encoder_name": "resnet18", "decoder_channels": 32},
    "Segformer": {
        "dims": [16, 32, 64, 128],
        "heads": [1, 2, 4, 8],
        "num_layers": 1,
        "decoder_dim": 32,
        "num_downsampling_chans": 16,
    },
    # feature_size must be a multiple of 12; "instance" norm fails on the 1×1 bottleneck of small inputs.
    "SwinUNetR": {
        "feature_size": 12,
        "depths": [1, 1, 1, 1],
        "num_heads": [1, 2, 4, 8],
        "norm_name": "batch",
    },
    "UNetRPP": {
        "hidden_size": 64,
        "depths": [1, 1, 1, 1],
        "num_heads_encoder": 2,
        "num_heads_decoder": 2,
        "decoder_proj_size": 16,
        "encoder_proj_sizes": [16, 16, 16, 8],
    },
}

#: Settings key asking for pretrained encoder weights (DeepLabV3Plus), which torch.hub would download.
_PRETRAINED_KEY = "encoder_weights"


@dataclasses.dataclass(frozen=True)
class SpatialNorm:
    """An instance norm at 1/`downsampling` of the (autopadded) field: a field of at most `downsampling` rows
    and columns reaches it as one cell, which has no spatial statistics (torch raises)."""

    downsampling: int

    def refusal(self, shape: tuple[int, int]) -> str | None:
        """Why an H×W field is too small, or None where the network takes it."""
        if max(shape) > self.downsampling:
            return None
        return (
            f"takes fields of more than {self.downsampling} rows or columns: its instance norm at "
            f"1/{self.downsampling} of the field needs more than the one cell a {shape[0]}×{shape[1]} field "
            "leaves there"
        )


def spatial_norm(architecture: str, settings: dict | None) -> SpatialNorm | None:
    """Where `architecture` with `settings` normalises each sample over space in eval mode (an instance norm
    without running statistics), from the settings alone (no import of the architecture); None where no
    field size is too small for it."""
    if architecture not in SPATIAL_NORM_LEVELS:
        return None
    downsampling, key, default = SPATIAL_NORM_LEVELS[architecture]
    norm = (settings or {}).get(key, default)
    name, options = norm, {}
    if isinstance(norm, list | tuple):  # (name, options), as monai takes it
        name, options = norm[0], (norm[1] if len(norm) > 1 else {})
    if str(name).lower().startswith("instance") and not options.get("track_running_stats", False):
        return SpatialNorm(downsampling)
    return None


class _TrainOnlyDropout(torch.nn.Dropout):
    """`nn.Dropout` whose `p` reads 0 in eval mode.

    mfai 9.0.1's UNetRPP attention (`EPA`) passes `attn_drop.p` to `scaled_dot_product_attention`, which
    drops out whatever the mode: eval outputs would be random. Reading `p` through the mode fixes that.
    """

    @property
    def p(self) -> float:  # type: ignore[override]
        return self._p if self.training else 0.0

    @p.setter
    def p(self, value: float) -> None:
        self._p = value

    def extra_repr(self) -> str:
        return f"p={self._p}, train_only=True"


def architecture_class(architecture: str) -> type:
    """The mfai class of `architecture`, its module imported now; ValueError for an unknown name."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    return getattr(importlib.import_module(ARCHITECTURES[architecture]), architecture)


def _fix_eval_attention_dropout(model: torch.nn.Module) -> None:
    """Make every UNetRPP attention block's dropout train-only (see `_TrainOnlyDropout`)."""
    from mfai.pytorch.models.unetrpp import EPA

    for module in model.modules():
        if isinstance(module, EPA) and not isinstance(module.attn_drop, _TrainOnlyDropout):
            module.attn_drop = _TrainOnlyDropout(module.attn_drop.p)


def _accepts_tuple(annotation: Any) -> bool:
    """Whether a settings field annotation is `tuple`, `tuple[...]` or a union containing one."""
    if annotation is tuple or typing.get_origin(annotation) is tuple:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts_tuple(arg) for arg in typing.get_args(annotation))
    return False


def _to_tuple(value: Any) -> Any:
    """Lists (from JSON/YAML), nested ones included, as tuples; other values unchanged."""
    if isinstance(value, list | tuple):
        return tuple(_to_tuple(item) for item in value)
    return value


def _settings_fields(settings_kls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of an mfai settings dataclass."""
    hints = typing.get_type_hints(settings_kls)
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(settings_kls)}


def build_model(
    architecture: str,
    in_channels: int,
    out_channels: int,
    input_shape: tuple[int, int],
    settings: dict | None = None,
) -> torch.nn.Module:
    """Build an mfai model by name from a JSON/YAML-friendly settings dict.

    Raises ValueError naming the architecture and the unknown settings keys (listing the valid ones), for an
    unknown architecture (listing the known ones), or when DeepLabV3Plus is asked for pretrained weights.
    UNetRPP is fixed to `input_shape` (after autopadding) at build time; the others take any input size.
    Eval-mode outputs are deterministic (UNetRPP's attention dropout is made train-only).
    """
    kls = architecture_class(architecture)
    fields = _settings_fields(kls.settings_kls)
    values = dict(settings or {})

    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown settings for {architecture}: {', '.join(unknown)}; valid: {', '.join(sorted(fields))}"
        )
    if _PRETRAINED_KEY in fields:
        if values.get(_PRETRAINED_KEY):
            raise ValueError(
                f"{architecture}: {_PRETRAINED_KEY}={values[_PRETRAINED_KEY]!r} is not supported: "
                "pretrained weights would be downloaded at run time"
            )
        values[_PRETRAINED_KEY] = False
    values.setdefault("autopad_enabled", True)
    values = {
        key: _to_tuple(value) if _accepts_tuple(fields[key]) else value for key, value in values.items()
    }
    model = kls(
        in_channels, out_channels, input_shape=tuple(input_shape), settings=kls.settings_kls(**values)
    )
    if architecture == "UNetRPP":
        _fix_eval_attention_dropout(model)
    return model


def build_ensemble_model(
    architecture: str,
    settings: dict | None,
    head: Head,
    species: int,
    channels: int,
    input_shape: tuple[int, int],
) -> EnsembleModel:
    """An architecture with an ensemble head: `channels` normalised inputs → the normalised ensemble of
    `species` species (randomly initialised; the registry loads weights into it)."""
    backbone = build_model(architecture, channels, head_channels(head, species), input_shape, settings)
    return EnsembleModel(backbone, species, head)
