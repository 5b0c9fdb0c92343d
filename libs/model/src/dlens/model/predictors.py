"""The phase-two predictors (DESIGN §7): which are on, their channels, their normalisation, their encoding.

Each is switched on in the training config (`data.predictors`, the `Predictors` model below) and recorded
in the registry entry, so predict and serve rebuild the same inputs:

- `meteo`: the `meteo` variables at the valid time, (x − mean) / std per variable over the training runs;
- `meteo_change`: their change since the run (valid time − lead 0), standardised the same way;
- `recent_analysis`: the analysis of each species at the hours `analysis_hours` before the run, the last
  one `analysis_delay_h` before it (what is available at run time), with the members' log1p normalisation;
- `zenith`: the cosine of the solar zenith angle at the valid time (`dlens.model.solar`), unscaled;
- `statistics`: per species the min, max and `quantiles` of the members present (in the members'
  normalised units; 0 where none is), computed with the median and spread in `features.assemble_inputs`.

The first three come from outside the members and may be missing (a store without meteo, a request that
lacks them): a model trained with `dropout` > 0 learnt without them, each with a presence channel, and runs
without them; any other model refuses the input, naming the predictor (`MissingPredictor`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dlens.common.layout import METEO_VARIABLES, OPTIONAL_PREDICTORS
from dlens.model.solar import cos_zenith

#: The `meteo` variables a new model reads, in channel order (the store layout's); a registered model reads
#: those its card records (`ModelEntry.meteo_names`), whatever the layout holds today.
METEO_NAMES: tuple[str, ...] = tuple(METEO_VARIABLES)
#: The predictors an input may lack (the others derive from the members and the valid time).
OPTIONAL = OPTIONAL_PREDICTORS
#: What each optional predictor is, for the message that names a missing one.
WHAT = {
    "meteo": f"the meteo variables ({', '.join(METEO_NAMES)}) at the valid time",
    "meteo_change": "the meteo variables at the run (lead 0) and at the valid time",
    "recent_analysis": "the analysis of each species before the run",
}


class Predictors(BaseModel):
    """The predictors beyond the members, their median and spread, static fields and time (all off: the
    inputs of the first phase)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meteo: bool = Field(
        False, description=f"the meteo variables ({', '.join(METEO_NAMES)}) at the valid time"
    )
    meteo_change: bool = Field(False, description="the change of the meteo variables since the run (lead 0)")
    recent_analysis: bool = Field(
        False, description="the analysis of the hours before the run, as available at run time"
    )
    analysis_delay_h: int = Field(
        1,
        ge=1,
        le=72,
        description="hours after an analysis time until it is available: the last one read (the analysis at "
        "the run itself is the lead-0 target)",
    )
    analysis_window_h: int = Field(
        24, ge=1, le=96, description="hours of analysis read, back from the last one"
    )
    analysis_step_h: int = Field(3, ge=1, le=24, description="hours between the analysis times read")
    zenith: bool = Field(False, description="the cosine of the solar zenith angle at the valid time")
    statistics: bool = Field(False, description="min, max and the quantiles of the members present")
    quantiles: tuple[float, ...] = Field((0.1, 0.25, 0.75, 0.9), description="the member quantiles")
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="probability of dropping each of meteo, meteo_change and recent_analysis from a training "
        "sample (> 0: the model has a presence channel for each and runs without them)",
    )  # fmt: skip

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not 0.0 < q < 1.0 for q in value) or list(value) != sorted(set(value)):
            raise ValueError("quantiles: increasing values strictly between 0 and 1")
        return value

    @model_validator(mode="after")
    def _window(self) -> Predictors:
        if self.analysis_window_h % self.analysis_step_h:
            raise ValueError("analysis_window_h must be a multiple of analysis_step_h")
        return self

    @property
    def optional(self) -> tuple[str, ...]:
        """The predictors switched on that an input may lack."""
        return tuple(name for name in OPTIONAL if getattr(self, name))

    @property
    def enabled(self) -> tuple[str, ...]:
        """The predictors switched on, in channel-family order."""
        return tuple(name for name in (*OPTIONAL, "zenith", "statistics") if getattr(self, name))

    @property
    def statistics_quantiles(self) -> tuple[float, ...] | None:
        """The quantiles of the member statistics channels; None without them."""
        return self.quantiles if self.statistics else None

    def request_fields(self, species: int, variables: int = len(METEO_NAMES)) -> int:
        """How many fields (H, W) a request carries for these predictors, for a model of `species` species
        reading `variables` meteo variables."""
        meteo = variables * ((self.meteo or self.meteo_change) + self.meteo_change)
        return meteo + species * len(self.analysis_hours) * self.recent_analysis

    @property
    def analysis_hours(self) -> tuple[int, ...]:
        """Hours before the run of the analysis times read, oldest first (all ≥ analysis_delay_h)."""
        steps = range(self.analysis_window_h // self.analysis_step_h)
        return tuple(sorted((self.analysis_delay_h + k * self.analysis_step_h for k in steps), reverse=True))


def statistics_names(species: tuple[str, ...], predictors: Predictors) -> list[str]:
    """The channels of the member statistics, computed in batches with the median and spread."""
    if not predictors.statistics:
        return []
    return [f"{sp}:{s}" for sp in species for s in ("min", "max", *(f"q{q:g}" for q in predictors.quantiles))]


def encoded_names(
    species: tuple[str, ...], predictors: Predictors, meteo_names: tuple[str, ...] = METEO_NAMES
) -> list[str]:
    """The channels `PredictorEncoder.encode` delivers, in order, for a model reading `meteo_names`."""
    names = []
    if predictors.meteo:
        names += [f"meteo:{v}" for v in meteo_names]
    if predictors.meteo_change:
        names += [f"meteo_change:{v}" for v in meteo_names]
    if predictors.recent_analysis:
        names += [f"analysis:{sp}:-{h}h" for sp in species for h in predictors.analysis_hours]
    if predictors.zenith:
        names.append("zenith:cos")
    if predictors.dropout > 0:
        names += [f"present:{name}" for name in predictors.optional]
    return names


class MissingPredictor(ValueError):
    """An input lacks a predictor the model needs; `name` is the predictor."""

    def __init__(self, name: str):
        self.name = name
        self.described = f"predictor {name!r} ({WHAT[name]})"
        super().__init__(f"{self.described} is missing")


@dataclass(frozen=True)
class RawPredictors:
    """The optional predictors of one sample as read or received, None where absent: `meteo` and
    `meteo_at_run` (variable, H, W) in the model's meteo order (`PredictorEncoder.meteo_names`),
    `recent_analysis` (species, hour, H, W) in µg/m³ at the `analysis_hours` of the model."""

    meteo: np.ndarray | None = None
    meteo_at_run: np.ndarray | None = None
    recent_analysis: np.ndarray | None = None

    def get(self, name: str) -> np.ndarray | None:
        """The raw fields of optional predictor `name`, None where absent."""
        if name == "meteo_change":
            if self.meteo is None or self.meteo_at_run is None:
                return None
            return self.meteo - self.meteo_at_run
        return getattr(self, name)


@dataclass(frozen=True)
class Standardisation:
    """Per meteo variable mean and standard deviation, of the values and of their change since the run."""

    meteo: dict[str, dict[str, float]]
    meteo_change: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        return {"meteo": self.meteo, "meteo_change": self.meteo_change}

    @classmethod
    def from_dict(cls, value: dict | None) -> Standardisation:
        value = value or {}
        return cls(value.get("meteo", {}), value.get("meteo_change", {}))

    def apply(self, name: str, fields: np.ndarray, variables: tuple[str, ...]) -> np.ndarray:
        """(fields − mean) / std of predictor `name` (meteo or meteo_change), per variable of `variables` (the
        order of `fields`); a NaN value (a gap in the store's meteo) becomes 0, the training mean, as a
        missing analysis value does."""
        stats = getattr(self, name)
        mean = np.array([stats[v]["mean"] for v in variables])[:, None, None]
        std = np.array([max(stats[v]["std"], 1e-6) for v in variables])[:, None, None]
        return np.nan_to_num((fields - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True)
class PredictorEncoder:
    """Raw predictors → the normalised channels of `encoded_names` (C, H, W), for one model: its predictors,
    species, meteo standardisation and meteo variables (a new model's: METEO_NAMES; a registered one's: those
    its card records)."""

    predictors: Predictors
    species: tuple[str, ...]
    standardisation: Standardisation
    meteo_names: tuple[str, ...] = METEO_NAMES

    @property
    def names(self) -> list[str]:
        """The channels `encode` delivers, in order."""
        return encoded_names(self.species, self.predictors, self.meteo_names)

    def encode(
        self,
        raw: RawPredictors,
        normalise: Callable[[str, np.ndarray], np.ndarray],
        valid_time: np.datetime64,
        latitude: np.ndarray,
        longitude: np.ndarray,
        dropped: frozenset[str] = frozenset(),
    ) -> np.ndarray:
        """The channels of one sample on the grid `latitude` × `longitude`. `normalise(species, x)`: the
        members' normalisation; `dropped`: optional predictors to leave out (training's predictor dropout).
        MissingPredictor for one the model needs that `raw` lacks, unless it was trained with dropout."""
        p = self.predictors
        shape = (len(latitude), len(longitude))
        present = {name: name not in dropped and raw.get(name) is not None for name in p.optional}
        if p.dropout == 0:
            missing = next((name for name, there in present.items() if not there), None)
            if missing is not None:
                raise MissingPredictor(missing)
        channels: list[np.ndarray] = []
        for name in ("meteo", "meteo_change"):
            if getattr(p, name):
                if present[name]:
                    channels += list(self.standardisation.apply(name, raw.get(name), self.meteo_names))
                else:
                    channels += [np.zeros(shape)] * len(self.meteo_names)
        if p.recent_analysis:
            hours = len(p.analysis_hours)
            if present["recent_analysis"]:
                for k, sp in enumerate(self.species):
                    channels += [np.nan_to_num(normalise(sp, f)) for f in raw.recent_analysis[k]]
            else:
                channels += [np.zeros(shape)] * (hours * len(self.species))
        if p.zenith:
            channels.append(cos_zenith(valid_time, latitude, longitude))
        if p.dropout > 0:
            channels += [np.full(shape, float(present[name])) for name in p.optional]
        if not channels:
            return np.zeros((0, *shape), dtype=np.float32)
        return np.stack(channels).astype(np.float32)
