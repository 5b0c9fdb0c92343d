"""How to read one file in store terms (the result of detection), and the lazy normalised dataset it gives."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from dlens.common.species import SPECIES

from .lazy import Axis, NormalisedArray, lazy_variable


@dataclass
class SpeciesSource:
    """Where one store species comes from in the file."""

    raw: xr.DataArray  # lazy, CF-decoded
    factor: float  # to µg/m3
    name: str  # variable name in the file (for messages)
    axes: list[Axis] = field(default_factory=list)  # target axes (time-like, level, lat, lon)


@dataclass
class Layout:
    kind: str
    member: str | None
    run: pd.Timestamp | None
    leads: np.ndarray  # int64 hours, ascending (forecast)
    times: np.ndarray  # datetime64[ns], ascending (analysis/reanalysis)
    levels: np.ndarray  # int64 m, ascending
    latitude: np.ndarray  # ascending
    longitude: np.ndarray  # ascending in [-180, 180)
    species: dict[str, SpeciesSource]
    stream: str | None = None  # interim / validated (a reanalysis)

    @property
    def time_dim(self) -> str:
        return "lead" if self.kind == "forecast" else "time"

    def dataset(self, clip: bool = True, attrs: dict | None = None) -> xr.Dataset:
        """The lazy, normalised dataset: float32 µg/m3, dims (lead|time, level, latitude, longitude)."""
        dims = (self.time_dim, "level", "latitude", "longitude")
        data_vars = {
            name: lazy_variable(
                dims,
                NormalisedArray(src.raw, src.axes, src.factor, clip=clip),
                {"units": "µg/m3", "long_name": SPECIES[name].long_name, "source_variable": src.name},
            )
            for name, src in self.species.items()
        }
        tcoord = self.leads if self.kind == "forecast" else self.times
        coords = {
            self.time_dim: (self.time_dim, tcoord, {"units": "hours"} if self.kind == "forecast" else {}),
            "level": ("level", self.levels, {"units": "m"}),
            "latitude": ("latitude", self.latitude, {"units": "degrees_north"}),
            "longitude": ("longitude", self.longitude, {"units": "degrees_east"}),
        }
        return xr.Dataset(data_vars, coords=coords, attrs=attrs or {})
