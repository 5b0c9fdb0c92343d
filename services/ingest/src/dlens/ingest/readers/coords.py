"""Latitude/longitude checks and orientation: ascending latitude, longitude in [-180, 180) ascending."""

from __future__ import annotations

import numpy as np

from dlens.common import grid

from .errors import Problem
from .model import grid_problem

_TOL = 1e-3
# MACCGE01 outer cell edges: a single off-lattice cell must still lie inside them.
_SOUTH, _NORTH = grid.LAT0 - grid.RESOLUTION / 2, grid.LAT0 + (grid.NLAT - 0.5) * grid.RESOLUTION
_WEST, _EAST = grid.LON0 - grid.RESOLUTION / 2, grid.LON0 + (grid.NLON - 0.5) * grid.RESOLUTION


def orient(lat_raw: np.ndarray, lon_raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(latitude, lat_index, longitude, lon_index): ascending normalised coordinates and, for each, the raw
    index of every position. Raises Problem for a grid the store cannot take (one-cell series excepted)."""
    lat = np.atleast_1d(np.asarray(lat_raw, dtype=np.float64))
    lon = grid.normalise_longitude(np.atleast_1d(np.asarray(lon_raw, dtype=np.float64)))
    if lat.ndim != 1 or lon.ndim != 1:
        raise Problem("latitude/longitude are not 1-D axes (curvilinear grid): not the MACCGE01 grid")
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))) or lat.size == 0 or lon.size == 0:
        raise Problem("latitude/longitude are missing or not finite")
    for name, values in (("latitude", lat), ("longitude", lon)):
        if values.size > 1:
            step = float(np.median(np.abs(np.diff(np.sort(values)))))
            if step >= 0.2:
                raise Problem(
                    f"non-regional grid ({name} spacing {step:g}°, not 0.1°): not a CAMS regional "
                    "air-quality file (global CAMS products such as EAC4/EGG4 are not accepted)"
                )
            if abs(step - grid.RESOLUTION) > _TOL:
                raise Problem(f"wrong grid: {name} spacing {step:g}° is not the 0.1° MACCGE01 grid")
    ilat, ilon = np.argsort(lat, kind="stable"), np.argsort(lon, kind="stable")
    lat_s, lon_s = lat[ilat], lon[ilon]
    if lat.size == 1 and lon.size == 1:
        if not (_SOUTH <= lat_s[0] <= _NORTH and _WEST <= lon_s[0] <= _EAST):
            raise Problem(f"cell {lat_s[0]:g}N {lon_s[0]:g}E lies outside the MACCGE01 domain")
        digits = 2 if grid_problem(lat_s, lon_s) is None else 6  # undo float32/modulo noise
        return np.round(lat_s, digits), ilat, np.round(lon_s, digits), ilon
    problem = grid_problem(lat_s, lon_s)
    if problem is not None:
        raise Problem(f"wrong grid: {problem}")
    dom = grid.domain_of(lat_s, lon_s)
    return dom.latitude.astype(np.float64), ilat, dom.longitude.astype(np.float64), ilon
