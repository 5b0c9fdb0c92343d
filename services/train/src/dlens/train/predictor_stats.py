"""The standardisation of the meteo predictors, from the training period only (as the members' statistics)."""

from __future__ import annotations

import numpy as np

from dlens.common.layout import METEO
from dlens.common.reader import StoreReader
from dlens.model.predictors import METEO_NAMES, Predictors, Standardisation
from dlens.train.config import Period

#: At most this many training runs, evenly spread, give the statistics (a full-grid run: ~100 MB a variable).
MAX_RUNS = 16


def store_standardisation(url: str, period: Period, predictors: Predictors) -> Standardisation:
    """Mean and standard deviation of each meteo variable and of its change since the run (lead 0) over the
    training runs of `period` whose meteo is committed; empty when neither predictor is on. ValueError when
    they are on and no training run has its meteo."""
    if not (predictors.meteo or predictors.meteo_change):
        return Standardisation({}, {})
    reader = StoreReader(url)
    first, last = np.datetime64(period.start, "h"), np.datetime64(period.end, "h")
    runs = [
        run
        for run in (reader.axis(METEO) if reader.has(METEO) else {})
        if first <= run <= last and all(reader.meteo_complete(v, run) for v in METEO_NAMES)
    ]
    if not runs:
        raise ValueError(
            f"store {url!r} has no meteo for the training runs {period.start}..{period.end}: the meteo "
            "predictors need it (ingest it, or switch them off)"
        )
    runs = [runs[i] for i in np.unique(np.linspace(0, len(runs) - 1, MAX_RUNS).round().astype(int))]
    first_lead = reader.lead_index.get(0)
    meteo, change = {}, {}
    for name in METEO_NAMES:
        array, positions = reader.array(METEO, name), reader.axis(METEO)
        blocks = np.stack([array[positions[run]] for run in runs]).astype(np.float64)
        meteo[name] = _moments(blocks)
        if first_lead is not None:
            change[name] = _moments(blocks - blocks[:, first_lead : first_lead + 1])
    return Standardisation(meteo, change)


def _moments(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.nanmean(values)), "std": float(np.nanstd(values))}
