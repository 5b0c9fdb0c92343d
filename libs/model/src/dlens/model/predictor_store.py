"""The raw phase-two predictors of a (run, lead) read from the store: what train, predict and serve's
forecast endpoint feed `PredictorEncoder.encode`."""

from __future__ import annotations

import numpy as np

from dlens.common.reader import StoreReader
from dlens.model.predictors import PredictorEncoder, RawPredictors


def run_predictors(reader: StoreReader, encoder: PredictorEncoder, run: np.datetime64) -> RawPredictors:
    """What every lead of `run` shares, read once: the meteo at the run (lead 0) and the recent analysis, each
    None where the store does not hold all of it or the model does not read it. The recent analysis reads
    only level 0 at the hours `analysis_hours` before the run (all ≥ `analysis_delay_h`): nothing valid after
    what is available at run time."""
    predictors, t0 = encoder.predictors, np.datetime64(run, "h")
    at_run = None
    if predictors.meteo_change and 0 in reader.spec.leads:
        at_run = _meteo(reader, encoder.meteo_names, t0, 0)
    recent = _recent_analysis(reader, encoder, t0) if predictors.recent_analysis else None
    return RawPredictors(None, at_run, recent)


def read_predictors(
    reader: StoreReader,
    encoder: PredictorEncoder,
    run: np.datetime64,
    lead: int,
    shared: RawPredictors | None = None,
) -> RawPredictors:
    """The optional predictors the model of `encoder` reads at `run` + `lead`, each None where the store does
    not hold all of it; `shared`: `run_predictors` of the run, read here when not given."""
    t0 = np.datetime64(run, "h")
    shared = run_predictors(reader, encoder, t0) if shared is None else shared
    predictors = encoder.predictors
    meteo = (
        _meteo(reader, encoder.meteo_names, t0, lead) if predictors.meteo or predictors.meteo_change else None
    )
    return RawPredictors(meteo, shared.meteo_at_run, shared.recent_analysis)


def missing_predictors(reader: StoreReader, encoder: PredictorEncoder, run: np.datetime64) -> list[str]:
    """The optional predictors the model of `encoder` reads that the store does not hold for `run` (from the
    ingest status alone, without reading fields)."""
    predictors, t0 = encoder.predictors, np.datetime64(run, "h")
    meteo = all(reader.meteo_complete(name, t0) for name in encoder.meteo_names)
    recent = all(
        reader.analysis_complete(sp, t0 - np.timedelta64(h, "h"))
        for sp in encoder.species
        for h in predictors.analysis_hours
    )
    held = {"meteo": meteo, "meteo_change": meteo and 0 in reader.spec.leads, "recent_analysis": recent}
    return [name for name in predictors.optional if not held[name]]


def _meteo(reader: StoreReader, names: tuple[str, ...], run: np.datetime64, lead: int) -> np.ndarray | None:
    fields = [reader.meteo(name, run, lead) for name in names]
    return None if any(f is None for f in fields) else np.stack(fields).astype(np.float64)


def _recent_analysis(reader: StoreReader, encoder: PredictorEncoder, run: np.datetime64) -> np.ndarray | None:
    times = [run - np.timedelta64(h, "h") for h in encoder.predictors.analysis_hours]
    fields = [[reader.analysis(sp, t, level=0) for t in times] for sp in encoder.species]
    if any(f is None for row in fields for f in row):
        return None
    return np.stack([np.stack(row) for row in fields]).astype(np.float64)
