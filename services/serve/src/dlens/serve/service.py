"""The DLENS deployment: the HTTP API of DESIGN §8 (FastAPI ingress on Ray Serve), prediction and the viewer.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import asyncio
import logging
import warnings
from datetime import datetime
from importlib.resources import files
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from ray import serve

from dlens.common.config import get_settings
from dlens.common.grid import Domain, crop_of
from dlens.common.logging import setup_logging
from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS, SpeciesName
from dlens.common.store import S3Bounds, bound_s3_requests
from dlens.common.version import code_version
from dlens.model.features import level_positions
from dlens.model.predictor_store import read_predictors
from dlens.model.registry import ModelEntry
from dlens.serve.args import ServeArgs
from dlens.serve.bodies import JSON_KINDS, NetcdfQuery, domain_or, netcdf_workers, read_body
from dlens.serve.catalog import Catalog
from dlens.serve.codec import NETCDF, PNG, render_png, write_netcdf
from dlens.serve.limits import Guard, body_limit
from dlens.serve.predictor import Predictor
from dlens.serve.problems import RequestProblem, StoreUnavailable, unprocessable
from dlens.serve.samples import Fields, check_level, check_one_level, make_sample, utc_naive
from dlens.serve.schemas import (
    EnsembleRequest,
    EnsembleResponse,
    ForecastResponse,
    ModelInfo,
    Problem,
    RunsInfo,
)

LOG = logging.getLogger(__name__)
api = FastAPI(
    title="DL-ENS",
    version=code_version("dlens-serve"),
    description="Deep-learning ensemble of the CAMS Regional air-quality forecasts. Members in, DL-ENS out.",
)
ERRORS = {code: {"model": Problem} for code in (400, 401, 404, 413, 422, 503)}
#: The viewer page, read once per replica.
VIEWER = files("dlens.serve").joinpath("viewer.html").read_text()
ModelQuery = Annotated[str | None, Query(description="Model id (or latest); default: the one the app serves")]


# The helpers precede the service class: Serve captures the class and what it refers to when decorated.


def _median(members: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells stay NaN
        return np.nanmedian(members, axis=0)


def _crop(outer: Domain, inner: Domain) -> tuple[slice, slice]:
    try:
        return crop_of(outer, inner)
    except ValueError as exc:
        raise unprocessable(str(exc)) from None


def _json(body: BaseModel) -> Response:
    """A response model as JSON, serialised by pydantic-core (much faster than json.dumps on fields)."""
    return Response(body.model_dump_json(), media_type="application/json")


def _meta(
    entry: ModelEntry, species: str, run: datetime, lead: int, level: int, domain: Domain, used: list
) -> dict:
    run = utc_naive(run)
    valid = np.datetime64(run, "h") + np.timedelta64(lead, "h")
    return {
        "model": entry.model_id, "species": species, "run": run, "lead": lead, "level": level,
        "valid_time": valid.astype(datetime), "domain": domain.spec(), "members_used": used,
        "latitude": domain.latitude.tolist(), "longitude": domain.longitude.tolist(),
    }  # fmt: skip


@api.exception_handler(RequestProblem)
async def _problem(request: Request, exc: RequestProblem) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


@api.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 listing what is wrong, without echoing the (possibly large) input."""
    errors = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in exc.errors()[:20]]
    return JSONResponse({"detail": errors}, status_code=422)


@serve.deployment(  # the request bounds come from ServeArgs (app.build_app)
    name="DLENS", health_check_period_s=10, health_check_timeout_s=30, ray_actor_options={"num_cpus": 1}
)
@serve.ingress(api)
class DlensService:
    """Checks requests, reads the store, predicts DL-ENS in dynamic batches, encodes the answer. The store is
    read off the event loop (a stalled store stalls only the requests that wait for it), and a replica starts
    while the store does not answer: it is then not ready, and the default model is resolved once it is."""

    def __init__(self, args: ServeArgs):
        setup_logging(get_settings().log_level)
        token = args.bearer_token(get_settings())  # ValueError without one unless anonymous access is allowed
        bound_s3_requests(S3Bounds(args.store_timeout_s, args.store_attempts))
        self.catalog = Catalog(
            args.store, args.reader_refresh_s, args.bundles, args.unknown_model_ttl_s, args.store_retry_s
        )
        self.predictor = Predictor(self.catalog, args)
        self.model_arg, self.default_model = args.model, None
        try:  # a default model missing from the registry fails the start; an unreachable store does not
            self.default_model = self.catalog.model(args.model).model_id
            self.catalog.reader()
        except StoreUnavailable as exc:
            LOG.warning("starting without the store: %s", exc.detail)
        self.parsing = asyncio.Semaphore(args.max_parsing)
        self.netcdf = netcdf_workers(args)

        def max_bytes() -> int:  # the store's domain (and the models' predictors) bound a body once known
            reader = self.catalog.last_reader
            if reader is None:
                return args.max_body_bytes
            fields = max(
                (
                    e.predictors.request_fields(len(e.species), len(e.meteo_names))
                    for e in self.catalog.last_models.values()
                ),
                default=0,
            )
            return body_limit(args.max_body_bytes, reader.spec.domain.shape, fields)

        api.add_middleware(Guard, max_bytes=max_bytes, token=token.get_secret_value() if token else None)

    async def _default(self) -> str:
        """The default model's id, resolved (`latest` included) the first time the registry is read."""
        if self.default_model is None:
            self.default_model = (await asyncio.to_thread(self.catalog.model, self.model_arg)).model_id
        return self.default_model

    async def _entry(self, model_id: str | None) -> ModelEntry:
        return await asyncio.to_thread(self.catalog.model, model_id or await self._default())

    async def _reader(self) -> StoreReader:
        return await asyncio.to_thread(self.catalog.reader)

    def reconfigure(self, config: dict) -> None:
        """Batching settings from the Serve config's `user_config` (applied without a restart)."""
        self.predictor.reconfigure(config)

    def check_health(self) -> None:
        """Unhealthy after a device error in a forward pass: Serve then replaces the replica."""
        self.predictor.check_health()

    def stats(self) -> dict:
        """Batch sizes run by this replica (the benchmark reads them through a handle)."""
        return self.predictor.stats()

    @api.get("/healthz", summary="Liveness: the replica answers")
    async def healthz(self) -> dict:
        return {"status": "ok"}

    @api.get(
        "/readyz", summary="Readiness: the default model loaded and the store reachable", responses={503: {}}
    )
    async def readyz(self) -> JSONResponse:
        """Public, so it says which part is not ready and the kind of error, never the error's text (store
        paths, endpoints): that goes to the replica's log."""
        part = "the store"
        try:
            runs = await asyncio.to_thread(self.catalog.ready)
            part = "the default model"
            loaded = await asyncio.wait_for(self.predictor.ready(await self._default()), timeout=60)
        except StoreUnavailable as exc:
            return JSONResponse({"status": "not ready", "detail": exc.detail}, status_code=503)
        except Exception as exc:  # not ready, whatever the cause: say which part
            LOG.warning("not ready: %s", part, exc_info=True)
            detail = f"{part} is not available ({type(exc).__name__}); the replica's log has the details"
            return JSONResponse({"status": "not ready", "detail": detail}, status_code=503)
        return JSONResponse({"status": "ready", "runs": runs, **loaded})

    @api.get("/v1/models", summary="Registered models", response_model=list[ModelInfo])
    async def models(self) -> list[ModelInfo]:
        default = await self._default()
        return [
            ModelInfo(
                id=e.model_id,
                architecture=e.card["architecture"],
                species=list(e.species),
                levels=list(e.levels),
                created=e.card["created"],
                periods=e.card["periods"],
                validation=e.card["validation"],
                default=e.model_id == default,
                predictors=list(e.predictors.enabled),
                optional_predictors=list(e.predictors.optional) if e.predictors.dropout > 0 else [],
                analysis_hours=list(e.predictors.analysis_hours) if e.predictors.recent_analysis else [],
            )
            for e in (await asyncio.to_thread(self.catalog.models)).values()
        ]

    @api.get("/v1/runs", summary="Forecast runs in the store", response_model=RunsInfo)
    async def runs(self) -> RunsInfo:
        reader, entry = await self._reader(), await self._entry(None)
        return RunsInfo(
            runs=[t.astype(datetime) for t in reader.complete_runs()], leads=list(reader.spec.leads),
            levels=list(reader.spec.levels), species=list(entry.species), domain=reader.spec.domain.spec(),
        )  # fmt: skip

    @api.post(
        "/v1/ensemble",
        summary="DL-ENS from member fields (JSON or NetCDF body, answered in the same form)",
        response_model=EnsembleResponse,
        responses=ERRORS | {200: {"content": {NETCDF: {}}}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": EnsembleRequest.model_json_schema()},
                    NETCDF: {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def ensemble(
        self,
        request: Request,
        model: ModelQuery = None,
        species: Annotated[
            SpeciesName | None, Query(description="NetCDF body: the species to predict")
        ] = None,
        run: Annotated[datetime | None, Query(description="NetCDF body: the run (ISO 8601, UTC)")] = None,
        lead: Annotated[int | None, Query(ge=0, le=96, description="NetCDF body: lead hours")] = None,
        level: Annotated[
            int, Query(description="NetCDF body: level in metres (one of the model's levels)")
        ] = 0,
    ) -> Response:
        entry, reader = await self._entry(model), await self._reader()
        store_domain = reader.spec.domain
        body = await request.body()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        async with self.parsing:
            got = await asyncio.to_thread(
                read_body, body, kind, NetcdfQuery(species, run, lead, level), store_domain, self.netcdf
            )
        check_one_level(entry, got.level)
        lacking = "which the request lacks"
        if kind not in JSON_KINDS:
            lacking += " (a NetCDF body carries no predictors: send JSON)"
        sample = make_sample(
            entry, got.species, got.run, got.lead, got.domain, store_domain, got.fields,
            got.predictors.raw(entry, got.domain), lacking, got.level,
        )  # fmt: skip
        k = entry.block(got.species, got.level)
        dlens = (await self.predictor.predict(sample))[k]
        used = sample.members_used(k)
        missing = [sp for sp in entry.species if not sample.members_used(entry.block(sp, got.level))]
        meta = _meta(entry, got.species, got.run, got.lead, got.level, got.domain, used)
        meta["missing_species"] = missing
        if kind in JSON_KINDS:
            return _json(EnsembleResponse.model_construct(**meta, dlens=dlens.tolist()))
        return Response(write_netcdf({got.species: dlens}, got.domain, meta), media_type=NETCDF)

    @api.get(
        "/v1/forecast/{species}",
        summary="DL-ENS of a run in the store, beside the median of the same members",
        response_model=ForecastResponse,
        responses=ERRORS | {200: {"content": {NETCDF: {}, PNG: {}}}},
    )
    async def forecast(
        self,
        species: Annotated[SpeciesName, Path()],
        run: Annotated[datetime, Query(description="Forecast run (ISO 8601, UTC)")],
        lead: Annotated[int, Query(ge=0, le=96, description="Lead hours")],
        level: Annotated[int, Query(description="Level in metres (one of the model's levels)")] = 0,
        domain: Annotated[
            str | None, Query(description="Crop of the store's domain: name or S,N,W,E")
        ] = None,
        format: Annotated[Literal["json", "netcdf", "png"], Query()] = "json",
        model: ModelQuery = None,
    ) -> Response:
        entry, reader = await self._entry(model), await self._reader()
        if species not in entry.species:
            raise unprocessable(f"model {entry.model_id} predicts {', '.join(entry.species)}, not {species}")
        check_level(entry, level)
        try:
            positions = level_positions(entry.levels, reader.spec.levels)
        except ValueError as exc:
            raise unprocessable(f"model {entry.model_id} reads levels the store lacks: {exc}") from None
        t0 = np.datetime64(utc_naive(run), "h")
        runs = reader.complete_runs()
        if t0 not in runs:
            span = f"{runs[0]} .. {runs[-1]}" if runs else "none"
            raise RequestProblem(404, f"run {t0} is not in the store (runs: {span})")
        if lead not in reader.spec.leads:
            raise unprocessable(
                f"lead {lead} h is not in the store (leads: {', '.join(map(str, reader.spec.leads))})"
            )
        crop = domain_or(domain, reader.spec.domain)
        stored = await asyncio.to_thread(  # (species, member, level, H, W) at the model's levels
            self.catalog.read,
            lambda: np.stack([reader.members(sp, t0, lead)[:, list(positions)] for sp in entry.species]),
        )
        k = entry.block(species, level)
        members = stored[entry.species.index(species), :, entry.levels.index(level)]
        if not np.isfinite(members).any():
            raise RequestProblem(404, f"no member of {species} is in the store for run {t0}")
        fields: dict[int, Fields] = {
            lv: {
                sp: {m: f if np.isfinite(f).any() else None for m, f in zip(MEMBERS, stored[i, :, v])}
                for i, sp in enumerate(entry.species)
            }
            for v, lv in enumerate(entry.levels)
        }
        predictors = await asyncio.to_thread(
            self.catalog.read, lambda: read_predictors(reader, entry.encoder, t0, lead)
        )
        sample = make_sample(
            entry, species, run, lead, reader.spec.domain, reader.spec.domain, fields[level], predictors,
            f"which the store lacks for run {t0}", level, fields,
        )  # fmt: skip
        rows, cols = _crop(reader.spec.domain, crop)
        dlens = (await self.predictor.predict(sample))[k][rows, cols]
        median = _median(members)[rows, cols]
        meta = _meta(entry, species, run, lead, level, crop, sample.members_used(k))
        if format == "png":
            valid = t0 + np.timedelta64(lead, "h")
            at = f" at {level} m" if level else ""
            title = f"{species}{at} run {t0} +{lead} h (valid {valid}) · model {entry.model_id}"
            return Response(
                await asyncio.to_thread(render_png, species, dlens, median, crop, title), media_type=PNG
            )
        if format == "netcdf":
            return Response(
                write_netcdf({species: dlens, f"{species}_median": median}, crop, meta), media_type=NETCDF
            )
        answer = ForecastResponse.model_construct(**meta, dlens=dlens.tolist(), median=median.tolist())
        return _json(answer)

    @api.get("/", response_class=HTMLResponse, summary="Map viewer: median, DL-ENS and their difference")
    async def viewer(self) -> HTMLResponse:
        return HTMLResponse(VIEWER)
