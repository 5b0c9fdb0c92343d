"""From a request's member fields to one checked model sample (the predictor's unit of work)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from dlens.common.grid import Domain, crop_of
from dlens.common.species import MEMBERS
from dlens.model.predictors import MissingPredictor, RawPredictors
from dlens.model.registry import ModelEntry
from dlens.serve.problems import unprocessable

#: Species → member → field (H, W) in µg/m³, or None for a member that is missing.
Fields = dict[str, dict[str, np.ndarray | None]]


@dataclass(frozen=True)
class GivenPredictors:
    """The predictors a request body gives, None where it gives none: meteo at the valid time and at the run
    by variable (H, W), the recent analysis by species (hour, H, W)."""

    meteo: dict[str, np.ndarray] | None = None
    meteo_at_run: dict[str, np.ndarray] | None = None
    recent_analysis: dict[str, np.ndarray] | None = None

    def raw(self, entry: ModelEntry, domain: Domain) -> RawPredictors:
        """The model's raw predictors from these, the meteo in the order of the variables the model reads;
        422 where a given one does not fit the model or domain, or has a NaN or infinite value (a client
        error, where a gap in the store's meteo is zero-filled: docs/serve.md)."""
        meteo = [self._meteo(name, entry, domain) for name in ("meteo", "meteo_at_run")]
        return RawPredictors(*meteo, self._recent(entry, domain))

    def _meteo(self, name: str, entry: ModelEntry, domain: Domain) -> np.ndarray | None:
        given = getattr(self, name)
        if given is None or not entry.meteo_names:
            return None
        lacking = [v for v in entry.meteo_names if v not in given]
        if lacking:
            reads = ", ".join(entry.meteo_names)
            raise unprocessable(f"{name} lacks {', '.join(lacking)}: model {entry.model_id} reads {reads}")
        for variable in entry.meteo_names:
            field = given[variable]
            if field.shape != domain.shape:
                raise unprocessable(
                    f"{name}.{variable}: a {_size(field.shape)} field on a {_size(domain.shape)} domain"
                )
            if not np.isfinite(field).all():
                raise unprocessable(f"{name}.{variable} has non-finite values (NaN or inf)")
        return np.stack([given[v] for v in entry.meteo_names])

    def _recent(self, entry: ModelEntry, domain: Domain) -> np.ndarray | None:
        if self.recent_analysis is None or not entry.predictors.recent_analysis:
            return None
        hours = entry.predictors.analysis_hours
        lacking = [sp for sp in entry.species if sp not in self.recent_analysis]
        if lacking:
            species = ", ".join(lacking)
            raise unprocessable(f"recent_analysis lacks {species}: model {entry.model_id} reads it")
        for sp in entry.species:
            fields = self.recent_analysis[sp]
            if fields.shape != (len(hours), *domain.shape):
                raise unprocessable(
                    f"recent_analysis.{sp}: model {entry.model_id} reads {len(hours)} {_size(domain.shape)} "
                    f"fields (the analysis {', '.join(map(str, hours))} h before the run, oldest first)"
                )
            if not np.isfinite(fields).all() or (fields < 0).any():
                raise unprocessable(f"recent_analysis.{sp} has negative or non-finite values")
        return np.stack([self.recent_analysis[sp] for sp in entry.species])


def _size(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape) or "scalar"


@dataclass(frozen=True)
class Sample:
    """The member fields given at one lead: `fields` (n, H, W) float32 at `slots` (block index, member
    index; the model's blocks, `ModelEntry.blocks`: its species, each at its levels). Only what was given
    crosses to the Predictor, which expands it with `members`."""

    model_id: str
    fields: np.ndarray
    slots: tuple[tuple[int, int], ...]
    species_count: int
    lead: int
    valid_time: np.datetime64
    domain: Domain
    predictors: np.ndarray  # (C, H, W): the model's encoded predictors (`entry.encoder`; C = 0 without them)

    def members(self) -> np.ndarray:
        """(block, member, H, W) float32, NaN where a member is missing."""
        out = np.full((self.species_count, len(MEMBERS), *self.domain.shape), np.nan, dtype=np.float32)
        for field, slot in zip(self.fields, self.slots):
            out[slot] = field
        return out

    def members_used(self, block: int) -> list[str]:
        """The members given for one block (a species, at a level), in member order."""
        return [MEMBERS[m] for k, m in sorted(self.slots) if k == block]


def utc_naive(run: datetime) -> datetime:
    """A run time in UTC without tzinfo; 422 outside 1950..2200 (no forecast there, and time arithmetic
    at the ends of the calendar overflows)."""
    if not 1950 <= run.year <= 2200:  # checked first: converting year 1 to UTC can overflow
        raise unprocessable(f"run {run.isoformat()} is outside 1950..2200")
    return run.astimezone(UTC).replace(tzinfo=None) if run.tzinfo is not None else run


def check_level(entry: ModelEntry, level: int) -> None:
    """422 unless the model predicts `level` (metres), naming the levels it predicts."""
    if level not in entry.levels:
        levels = ", ".join(map(str, entry.levels))
        raise unprocessable(f"level {level} m: model {entry.model_id} predicts levels {levels} m only")


def check_one_level(entry: ModelEntry, level: int) -> None:
    """422 unless the model reads one level, `level`: a POST body carries the members of one level, and a
    model of several reads the members of each (GET /v1/forecast reads them from the store)."""
    check_level(entry, level)
    if len(entry.levels) > 1:
        levels = ", ".join(map(str, entry.levels))
        raise unprocessable(
            f"model {entry.model_id} reads the members at levels {levels} m together: a request body "
            "carries one level, so POST /v1/ensemble serves models of one level; GET "
            "/v1/forecast/{species}?level= reads every level from the store"
        )


def make_sample(
    entry: ModelEntry,
    species: str,
    run: datetime,
    lead: int,
    domain: Domain,
    store_domain: Domain,
    fields: Fields,
    predictors: RawPredictors | None = None,
    lacking: str = "which the request lacks",
    level: int = 0,
    other_levels: Mapping[int, Fields] | None = None,
) -> Sample:
    """The model's input for `species` at `level` (metres) from member fields at that level (`fields`), at the
    model's other levels (`other_levels`: level → fields, for a model of several) and the raw predictors;
    RequestProblem (422) saying what does not fit, or naming a predictor the model needs that is missing
    (`lacking`: where from)."""
    if species not in entry.species:
        raise unprocessable(f"model {entry.model_id} predicts {', '.join(entry.species)}, not {species}")
    check_level(entry, level)
    by_level = {**(other_levels or {}), level: fields}
    if entry.leads is not None and lead not in entry.leads:
        leads = ", ".join(map(str, entry.leads))
        raise unprocessable(f"model {entry.model_id} was trained on leads {leads} h only, not {lead} h")
    unused = sorted({sp for given in by_level.values() for sp in given} - set(entry.species))
    if unused:
        raise unprocessable(
            f"model {entry.model_id} does not read {', '.join(unused)} (it reads {', '.join(entry.species)})"
        )
    try:
        crop_of(store_domain, domain)
    except ValueError as exc:
        raise unprocessable(f"{exc}: its static fields are not known outside it") from None
    fixed = entry.fixed_shape
    if fixed is not None and (domain.shape[0] < fixed[0] or domain.shape[1] < fixed[1]):
        raise unprocessable(
            f"model {entry.model_id} takes fields of {fixed[0]}×{fixed[1]} or more (larger ones on tiles of "
            f"that shape); domain {domain.spec()} is {domain.shape[0]}×{domain.shape[1]}"
        )
    norm = entry.spatial_norm
    too_small = norm.refusal(domain.shape) if norm else None
    if too_small:
        architecture = entry.card["config"]["model"]["architecture"]
        raise unprocessable(f"model {entry.model_id} ({architecture}) {too_small} (domain {domain.spec()})")
    several = len(entry.levels) > 1
    given = [
        ((k, MEMBERS.index(name)), _checked(field, f"{sp} at {lv} m" if several else sp, name, domain))
        for k, (sp, lv) in enumerate(entry.blocks)
        for name, field in by_level.get(lv, {}).get(sp, {}).items()
        if field is not None
    ]
    if not any(k == entry.blocks.index((species, level)) for (k, _), _ in given):
        raise unprocessable(f"no member of {species} given: at least one is needed")
    valid_time = np.datetime64(utc_naive(run), "h") + np.timedelta64(lead, "h")
    stacked = np.stack([field for _, field in given])
    try:
        raw, grid = predictors or RawPredictors(), (domain.latitude, domain.longitude)
        encoded = entry.encoder.encode(raw, entry.normaliser.forward, valid_time, *grid)
    except MissingPredictor as exc:
        raise unprocessable(f"model {entry.model_id} needs {exc.described}, {lacking}") from None
    return Sample(
        entry.model_id,
        stacked,
        tuple(slot for slot, _ in given),
        len(entry.blocks),
        lead,
        valid_time,
        domain,
        encoded,
    )


def _checked(field: np.ndarray, species: str, member: str, domain: Domain) -> np.ndarray:
    field = np.asarray(field, dtype=np.float64)
    if field.shape != domain.shape:
        shape = "×".join(str(n) for n in field.shape) or "a scalar"
        raise unprocessable(
            f"{species} member {member} is {shape}; domain {domain.spec()} (S,N,W,E) is "
            f"{domain.shape[0]}×{domain.shape[1]}"
            " (latitude rows south → north, longitude columns west → east)"
        )
    bad = int((~np.isfinite(field)).sum())
    if bad:
        raise unprocessable(
            f"{species} member {member} has {bad} non-finite values (NaN or inf); leave a missing member out"
        )
    if np.abs(field).max(initial=0.0) > 1e6:
        raise unprocessable(
            f"{species} member {member} has values beyond 1e6 µg/m³: not a concentration field"
        )
    return field.astype(np.float32)
