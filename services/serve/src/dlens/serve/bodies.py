"""A /v1/ensemble body read into the request it holds: JSON or NetCDF, its fields as arrays.

Reading JSON holds ~16× the body as Python objects: the service runs this off its event loop, a few bodies
at a time, and only the arrays outlive it. A NetCDF body is read in a worker process within a memory limit
(dlens.serve.workers): its arrays come back pickled."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from dlens.common.grid import Domain, parse_domain
from dlens.serve.args import ServeArgs
from dlens.serve.codec import NETCDF
from dlens.serve.netcdf_body import prepare, read_netcdf
from dlens.serve.problems import RequestProblem, unprocessable
from dlens.serve.samples import Fields, GivenPredictors
from dlens.serve.schemas import EnsembleRequest
from dlens.serve.workers import WorkerDied, WorkerPool

#: Content types read as NetCDF, and as JSON (no content type: JSON).
NETCDF_KINDS = (NETCDF, "application/netcdf")
JSON_KINDS = ("application/json", "")


@dataclass(frozen=True)
class EnsembleInput:
    """What a body asks for: the species, run, lead and level, the member fields of each species given,
    the domain they are on and the predictors given (a NetCDF body gives none)."""

    species: str
    run: datetime
    lead: int
    level: int
    domain: Domain
    fields: Fields
    predictors: GivenPredictors = field(default_factory=GivenPredictors)


@dataclass(frozen=True)
class NetcdfQuery:
    """The query parameters that say what a NetCDF body is for (a JSON body says it itself)."""

    species: str | None
    run: datetime | None
    lead: int | None
    level: int


def domain_or(text: str | None, fallback: Domain) -> Domain:
    """The domain named or given as S,N,W,E by `text`; `fallback` when None; 422 when not a domain."""
    if text is None:
        return fallback
    try:
        return parse_domain(text)
    except ValueError as exc:
        raise unprocessable(str(exc)) from None


def netcdf_workers(args: ServeArgs) -> WorkerPool:
    """The processes that read NetCDF bodies: max_parsing of them, each within max_netcdf_memory_mb."""
    limit = int(args.max_netcdf_memory_mb * 1024**2)
    return WorkerPool(args.max_parsing, limit, setup=prepare)


def read_body(
    body: bytes, kind: str, query: NetcdfQuery, store_domain: Domain, workers: WorkerPool
) -> EnsembleInput:
    """The request in a body of content type `kind` (NetCDF read by one of `workers`); RequestProblem (or a
    422 validation error) saying what is wrong with it."""
    if kind in NETCDF_KINDS:
        return _netcdf(body, query, workers)
    if kind in JSON_KINDS:
        return _json(body, store_domain)
    raise RequestProblem(415, f"content type {kind!r}: send application/json or {NETCDF}")


def _netcdf(body: bytes, query: NetcdfQuery, workers: WorkerPool) -> EnsembleInput:
    asked = (("species", query.species), ("run", query.run), ("lead", query.lead))
    missing = [name for name, value in asked if value is None]
    if missing:
        raise unprocessable(f"a NetCDF body needs the query parameters {', '.join(missing)}")
    fields, domain = read_netcdf_in(workers, body)
    if query.species not in fields:
        raise unprocessable(f"the NetCDF body has no {query.species} variable (it has {', '.join(fields)})")
    return EnsembleInput(query.species, query.run, query.lead, query.level, domain, fields)


def read_netcdf_in(workers: WorkerPool, body: bytes) -> tuple[Fields, Domain]:
    """A NetCDF body's fields and domain, read by one of `workers`: 413 where it takes more memory than their
    limit, 422 where its worker died reading it."""
    limit = f"{workers.limit / 1024**2:g} MiB (max_netcdf_memory_mb)"
    try:
        return workers.call(read_netcdf, body)
    except MemoryError:
        raise RequestProblem(
            413, f"reading the NetCDF body takes more memory than its limit of {limit}"
        ) from None
    except WorkerDied as died:
        raise unprocessable(
            f"the process reading the NetCDF body ended ({died}): a malformed body, or one taking more "
            f"memory than the limit of {limit}"
        ) from None


def _json(body: bytes, store_domain: Domain) -> EnsembleInput:
    try:
        req = EnsembleRequest.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None
    domain = domain_or(req.domain, store_domain)
    if req.species in req.context:
        raise unprocessable(
            f"{req.species} is the species to predict: give its members in members, not context"
        )
    given = {**req.context, req.species: req.members}
    predictors = _predictors(req)
    return EnsembleInput(req.species, req.run, req.lead, req.level, domain, _arrays(given), predictors)


def _predictors(req: EnsembleRequest) -> GivenPredictors:
    """The predictor fields of a JSON body as arrays: meteo by variable (H, W), the recent analysis by species
    (hour, H, W); `GivenPredictors.raw` checks them against the model."""

    def meteo(name: str, given: dict | None) -> dict[str, np.ndarray] | None:
        return None if given is None else {v: _array(f"{name}.{v}", f) for v, f in given.items()}

    recent = req.recent_analysis
    return GivenPredictors(
        meteo("meteo", req.meteo),
        meteo("meteo_at_run", req.meteo_at_run),
        None if recent is None else {sp: _array(f"recent_analysis.{sp}", f) for sp, f in recent.items()},
    )


def _array(name: str, fields: list) -> np.ndarray:
    try:
        return np.asarray(fields, dtype=np.float64)
    except ValueError:
        raise unprocessable(f"{name} is ragged: every field must have as many rows and values") from None


def _arrays(fields: dict) -> Fields:
    try:
        return {sp: {m: None if f is None else np.asarray(f, dtype=np.float64) for m, f in members.items()}
                for sp, members in fields.items()}  # fmt: skip
    except ValueError:
        raise unprocessable("a member field is ragged: every row must have as many values") from None
