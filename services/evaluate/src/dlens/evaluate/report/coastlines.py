"""Coastlines drawn offline: the 0.5 contour of the 1-km land mask over a map extent.

No download, no Natural Earth: the land mask ships inside the `global-land-mask` wheel and
`dlens.evaluate.landmask` reads only the rows of the extent.
"""

from __future__ import annotations

from functools import lru_cache

import contourpy
import numpy as np

from dlens.evaluate.landmask import is_land

#: Finest and coarsest sampling of the land mask (degrees); the step grows with the extent so a
#: continental domain still samples at most about `_MAX_POINTS` points.
_STEP_MIN, _STEP_MAX = 0.02, 0.05
_MAX_POINTS = 4_000_000


def _sampling_step(south: float, north: float, west: float, east: float) -> float:
    area = max(north - south, 0.0) * max(east - west, 0.0)
    return float(np.clip(np.sqrt(area / _MAX_POINTS), _STEP_MIN, _STEP_MAX))


@lru_cache(maxsize=32)
def _cached(south: float, north: float, west: float, east: float) -> tuple[np.ndarray, ...]:
    step = _sampling_step(south, north, west, east)
    lat = np.clip(np.arange(south, north + step / 2, step), -90.0, 90.0)
    lon = np.arange(west, east + step / 2, step)
    if lat.size < 2 or lon.size < 2:
        return ()
    lat2d, lon2d = np.meshgrid(lat, lon, indexing="ij")
    land = is_land(lat2d, lon2d).astype(np.float32)
    if land.min() == land.max():  # all land or all sea: no coastline
        return ()
    lines = contourpy.contour_generator(lon, lat, land, line_type="Separate").lines(0.5)
    return tuple(np.asarray(line, dtype=np.float32) for line in lines if len(line) > 1)


def coastline_segments(south: float, north: float, west: float, east: float) -> tuple[np.ndarray, ...]:
    """Coastline polylines as (n, 2) arrays of (lon, lat) inside the extent; cached per extent."""
    return _cached(*(round(float(v), 3) for v in (south, north, west, east)))
