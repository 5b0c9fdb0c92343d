"""The raw phase-two predictors of a (run, lead) read from the store: what train, predict and serve's
forecast endpoint feed `PredictorEncoder.encode`."""

from __future__ import annotations

import numpy as np

from dlens.common.reader import StoreReader
from dlens.model.predictors import METEO_NAMES, Predictors, RawPredictors


def read_predictors(
    reader: StoreReader, predictors: Predictors, species: tuple[str, ...], run: np.datetime64, lead: int
) -> RawPredictors:
    """The optional predictors switched on in `predictors` for `species` at `run` + `lead`, each None where
    the store does not hold all of it. The recent analysis reads only the hours `analysis_hours` before the
    run (all ≥ `analysis_delay_h`): nothing valid after what is available at run time."""
    t0 = np.datetime64(run, "h")
    meteo = _meteo(reader, t0, lead) if predictors.meteo or predictors.meteo_change else None
    at_run = _meteo(reader, t0, 0) if predictors.meteo_change and 0 in reader.spec.leads else None
    recent = _recent_analysis(reader, predictors, species, t0) if predictors.recent_analysis else None
    return RawPredictors(meteo, at_run, recent)


def missing_predictors(
    reader: StoreReader, predictors: Predictors, species: tuple[str, ...], run: np.datetime64
) -> list[str]:
    """The optional predictors switched on that the store does not hold for `run` (from the ingest status
    alone, without reading fields)."""
    t0 = np.datetime64(run, "h")
    meteo = all(reader.meteo_complete(name, t0) for name in METEO_NAMES)
    recent = all(
        reader.analysis_complete(sp, t0 - np.timedelta64(h, "h"))
        for sp in species
        for h in predictors.analysis_hours
    )
    held = {"meteo": meteo, "meteo_change": meteo and 0 in reader.spec.leads, "recent_analysis": recent}
    return [name for name in predictors.optional if not held[name]]


def _meteo(reader: StoreReader, run: np.datetime64, lead: int) -> np.ndarray | None:
    fields = [reader.meteo(name, run, lead) for name in METEO_NAMES]
    return None if any(f is None for f in fields) else np.stack(fields).astype(np.float64)


def _recent_analysis(
    reader: StoreReader, predictors: Predictors, species: tuple[str, ...], run: np.datetime64
) -> np.ndarray | None:
    times = [run - np.timedelta64(h, "h") for h in predictors.analysis_hours]
    fields = [[reader.analysis(sp, t) for t in times] for sp in species]
    if any(f is None for row in fields for f in row):
        return None
    return np.stack([np.stack([f[0] for f in row]) for row in fields]).astype(np.float64)
