"""What the readers report about one input file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np

from dlens.common import grid
from dlens.common.layout import Target

from .errors import IngestError

Kind = Literal["forecast", "analysis", "reanalysis"]


@dataclass(frozen=True)
class CamsFile:
    """One validated CAMS file (a zip member is extracted first). Coordinates are normalised."""

    path: Path
    source: str
    sha256: str
    kind: Kind
    member: str | None
    species: tuple[str, ...]
    run: datetime | None
    leads: tuple[int, ...]
    times: tuple[datetime, ...]
    levels: tuple[int, ...]
    latitude: np.ndarray
    longitude: np.ndarray
    #: The target an analysis or reanalysis file feeds (analysis, interim, validated); None for a forecast.
    target: Target | None = None

    @property
    def on_grid(self) -> bool:
        """True when the coordinates are contiguous MACCGE01 cell centres (what the store can hold)."""
        return grid_problem(self.latitude, self.longitude) is None


def grid_problem(latitude: np.ndarray, longitude: np.ndarray) -> str | None:
    """Why ascending coordinates are not contiguous MACCGE01 cells, or None when they are."""
    try:
        grid.domain_of(latitude, longitude)
    except ValueError as exc:
        return str(exc)
    return None


def check_on_grid(cf: CamsFile) -> None:
    """Raise an IngestError unless `cf` lies on MACCGE01 cell centres.

    Single-cell series (such as the HARMONIA_AQ files at 45.5N 9.2E) pass `inspect_files` and can be opened,
    because their value is real CAMS data; they are off the 0.1° lattice when the cell is not on x.x5, and a
    writer that needs MACCGE01 cells calls this first.
    """
    problem = grid_problem(cf.latitude, cf.longitude)
    if problem is not None:
        lat, lon = cf.latitude, cf.longitude
        where = (
            f"cell {lat[0]:g}N {lon[0]:g}E" if lat.size == lon.size == 1 else f"{lat.size}x{lon.size} grid"
        )
        raise IngestError(cf.source, f"{where} is not on the MACCGE01 grid: {problem}")
