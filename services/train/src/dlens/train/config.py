"""The training configuration: one pydantic model, read from `configs/train/<name>.yaml`.

The YAML files are validated against this model (unknown keys are errors, so a misspelt setting
is never silently ignored), and the registry stores the validated config with every model.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from dlens.common.layout import Target, check_name
from dlens.common.species import SPECIES_NAMES
from dlens.model.head import Head
from dlens.model.predictors import Predictors
from dlens.train.objective import Loss

Architecture = Literal["UNet", "HalfUNet", "DeepLabV3Plus", "Segformer", "SwinUNetR", "UNetRPP"]
#: A config or sweep name: it becomes part of store and experiment paths (the model id's prefix).
Name = Annotated[str, AfterValidator(lambda value: check_name(value, "name"))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Strict):
    """Runs from `start` to `end`, both included."""

    start: date = Field(description="first run (YYYY-MM-DD)")
    end: date = Field(description="last run, included")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        return self

    def overlaps(self, other: Period) -> bool:
        return self.start <= other.end and other.start <= self.end


class Patches(_Strict):
    """Training on crops of the fields: each (run, lead) read gives `per_sample` patches of `size` cells, with
    their static fields and positions (`dlens.train.patches`)."""

    size: tuple[int, int] = Field(description="rows and columns of a patch (at most the store's domain)")
    per_sample: int = Field(4, ge=1, le=256, description="patches cut from each (run, lead) read")

    @field_validator("size")
    @classmethod
    def _positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError(f"patch size {list(value)}: expected rows and columns ≥ 1")
        return value


class DataConfig(_Strict):
    """What the model sees: species, leads, levels, periods split by date, member dropout, predictors."""

    species: tuple[str, ...] = Field(
        SPECIES_NAMES, description="species the model corrects, all read together"
    )
    leads: tuple[int, ...] | None = Field(None, description="lead hours; default every lead of the store")
    levels: tuple[int, ...] = Field(
        (0,),
        description="levels in metres, ascending, each in the store: one, a model of that level; several, "
        "the levels as channels (one block per species and level)",
    )
    train: Period = Field(description="runs the model learns from")
    validation: Period = Field(description="runs that pick the best epoch")
    test: Period = Field(description="runs held out for the evaluation (dlens-train predict, dlens-evaluate)")
    target: Target = Field(
        "analysis",
        description="what the model learns to forecast (training and validation): the CAMS analysis, or the "
        "interim or validated reanalysis (store groups analysis, reanalysis/interim, reanalysis/validated)",
    )
    member_dropout: float = Field(0.15, ge=0.0, lt=1.0, description="probability of dropping each member")
    static: bool = Field(
        True, description="land-sea mask, orography, latitude and longitude as input channels"
    )
    predictors: Predictors = Field(
        Predictors(), description="the phase-two predictors, each off unless switched on (docs/train.md)"
    )
    patches: Patches | None = Field(
        None,
        description="train and validate on crops of the fields (a full-grid store); a batch holds batch_size "
        "× per_sample patches. Default: whole fields",
    )
    loader_workers: int = Field(2, ge=0, le=32, description="DataLoader processes per training worker")

    @field_validator("species")
    @classmethod
    def _known_species(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in SPECIES_NAMES]
        if unknown or not value:
            raise ValueError(f"unknown species {unknown}; expected a subset of {list(SPECIES_NAMES)}")
        return value

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or list(value) != sorted(set(value)) or min(value) < 0:
            raise ValueError(f"levels {list(value)}: expected distinct heights in metres (≥ 0), ascending")
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> DataConfig:
        periods = {"train": self.train, "validation": self.validation, "test": self.test}
        names = list(periods)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if periods[a].overlaps(periods[b]):
                    raise ValueError(f"the {a} and {b} periods overlap: they must be disjoint")
        return self


class ModelConfig(_Strict):
    """An mfai architecture by name, with its settings (fields of its settings dataclass)."""

    architecture: Architecture = Field(description="the mfai backbone")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="fields of the architecture's mfai settings dataclass, e.g. num_filters",
    )
    head: Head = Field(
        "mixture",
        description="mixture: softmax weights over the present members plus a correction, per point; "
        "correction: the median of the present members plus a correction",
    )


class OptimConfig(_Strict):
    epochs: int = Field(10, ge=1, description="passes over the training runs")
    batch_size: int = Field(8, ge=1, description="samples (run, lead) per step and worker")
    learning_rate: float = Field(1e-3, gt=0, description="AdamW learning rate (cosine schedule)")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")
    loss: Loss = Field(
        "relative", description="per-field MSE: in normalised units, in concentrations, or over the median's"
    )


class TrainConfig(_Strict):
    """Everything a training run needs besides the store and the machine."""

    name: Name = Field(description="the model id's prefix (<name>-<timestamp>)")
    seed: int = Field(0, description="weights, dropout and data order")
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig = OptimConfig()


def load_config(path: Path) -> TrainConfig:
    """Read and validate a YAML training config; ValueError naming the file and the problem."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the config ({exc})") from None
    try:
        return TrainConfig.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
