"""Reference forecasts from the analysis alone, the floor any forecast must beat (docs/evaluate.md).

Both read only analyses valid before the run, as an operational centre has them at run time:
- persistence: at lead L, the analysis at t0 − 24 h + (L mod 24) h: the last day before the run, repeated;
- climatology: at lead L, the mean of the analysis at the same hour of day over the `window` days before
  the run, t0 − 24·d h + (L mod 24) h for d = 1 … window (the days the store holds, at least one).
"""

from __future__ import annotations

import numpy as np

from dlens.common.reader import StoreReader

REFERENCES: tuple[str, ...] = ("persistence", "climatology")
DESCRIPTIONS = {
    "persistence": "the analysis of the 24 h before the run, repeated: at lead L, the analysis at "
    "run - 24 h + (L mod 24) h",
    "climatology": "per point and hour of day, the mean analysis over the trailing window of days before "
    "the run (DLENS_REFERENCE_WINDOW_DAYS)",
}


def days_back(name: str, window_days: int) -> range:
    """The days before the run whose analyses a reference averages."""
    return range(1, 2) if name == "persistence" else range(1, window_days + 1)


def hourly_fields(
    reader: StoreReader,
    name: str,
    species: str,
    run: np.datetime64,
    window_days: int,
    target: str = "analysis",
) -> list[np.ndarray] | None:
    """The reference's 24 fields, by hour after the run (lead mod 24), float32, from the `target` (the
    analysis, or a reanalysis); None when some hour has none in its window."""
    out = []
    for hour in range(24):
        total, count = None, 0
        for day in days_back(name, window_days):
            field = reader.analysis(species, run - np.timedelta64(24 * day - hour, "h"), target=target)
            if field is not None:
                total = field.astype(np.float64) if total is None else total + field
                count += 1
        if total is None:
            return None
        out.append((total / count).astype(np.float32))
    return out
