"""The HTTP API's bodies (OpenAPI at /docs): what a client sends and gets back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dlens.common.layout import METEO_VARIABLES
from dlens.common.species import MEMBERS, SpeciesName

MemberName = Literal[MEMBERS]  # type: ignore[valid-type]
MeteoName = Literal[tuple(METEO_VARIABLES)]  # type: ignore[valid-type]
#: A field on the domain: rows south → north, columns west → east, µg/m³.
Field2D = list[list[float]]


class EnsembleRequest(BaseModel):
    """Member fields of one species, run, lead and level on a domain; the DL-ENS of them is returned."""

    model_config = ConfigDict(extra="forbid")

    species: SpeciesName
    run: datetime = Field(description="Forecast run (ISO 8601, UTC), e.g. 2025-07-13T00:00")
    lead: int = Field(ge=0, le=96, description="Lead time in hours")
    level: int = Field(
        0,
        description="Level in metres of the members given: the level of a model of one level (GET "
        "/v1/models lists each model's levels; a model of several is served by GET /v1/forecast)",
    )
    domain: str | None = Field(
        None, description="Named domain (demo, tiny, full) or S,N,W,E cell centres; default: the store's"
    )
    members: dict[MemberName, Field2D | None] = Field(
        description="Member → field (latitude × longitude) in µg/m³; leave a missing member out (or null)"
    )
    context: dict[SpeciesName, dict[MemberName, Field2D | None]] = Field(
        default_factory=dict,
        description="Members of the model's other species at the same run and lead (a model trained on "
        "several species reads them; where they are left out they count as missing)",
    )
    meteo: dict[MeteoName, Field2D] | None = Field(
        None,
        description="Predictor `meteo`: every meteo variable (t2m K, blh m, u10 and v10 m/s, ssrd W m-2) at "
        "the valid time, for a model that reads it (GET /v1/models lists each model's predictors)",
    )
    meteo_at_run: dict[MeteoName, Field2D] | None = Field(
        None, description="Predictor `meteo_change`: every meteo variable at the run (lead 0), with `meteo`"
    )
    recent_analysis: dict[SpeciesName, list[Field2D]] | None = Field(
        None,
        description="Predictor `recent_analysis`: per species the model reads, the analysis (µg/m³) at the "
        "model's analysis_hours before the run, oldest first",
    )


class EnsembleResponse(BaseModel):
    """The DL-ENS field of one species, with where and when it holds."""

    model: str
    species: SpeciesName
    run: datetime
    lead: int
    level: int
    valid_time: datetime
    domain: str = Field(description="S,N,W,E cell centres")
    units: str = "µg/m3"
    members_used: list[str]
    missing_species: list[str] = Field(
        default_factory=list,
        description="Species the model reads that the request did not give: counted as missing, which costs "
        "skill (docs/serve.md); send them in context",
    )
    latitude: list[float]
    longitude: list[float]
    dlens: Field2D


class ForecastResponse(EnsembleResponse):
    """The DL-ENS field of a run in the store, with the median of the same members for comparison."""

    median: Field2D


class ModelInfo(BaseModel):
    """A registered model as a client picks it."""

    id: str
    architecture: str
    species: list[str]
    levels: list[int] = Field(
        default_factory=lambda: [0], description="The levels in metres the model reads and predicts"
    )
    created: str
    periods: dict
    validation: dict
    default: bool
    predictors: list[str] = Field(
        default_factory=list, description="The phase-two predictors the model reads (docs/train.md)"
    )
    optional_predictors: list[str] = Field(
        default_factory=list,
        description="Those of them a request may leave out: the model was trained with predictor dropout",
    )
    analysis_hours: list[int] = Field(
        default_factory=list, description="Hours before the run of the recent analysis fields, oldest first"
    )


class RunsInfo(BaseModel):
    """Forecast runs in the store that the forecast endpoint can serve."""

    runs: list[datetime]
    leads: list[int]
    levels: list[int]
    species: list[str]
    domain: str


class Problem(BaseModel):
    """Every error: what is wrong with the request."""

    detail: str | list
