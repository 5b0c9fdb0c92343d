"""Static maps on the generator's work grid: land fraction, orography, emissions, bias indices.

The work grid is the domain padded by a margin of cells, so plumes from sources just outside the
domain still enter it; everything hourly is evaluated on the domain crop (:attr:`Grid.inner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

import numpy as np
from scipy.ndimage import gaussian_filter

from dlens.common.grid import LAT0, LON0, RESOLUTION, Domain
from dlens.ingest.synthetic import geography as geo

KM_PER_DEG = 111.2


@dataclass(frozen=True)
class Grid:
    """The padded work grid of a domain: 1-D cell-centre coordinates and the domain crop."""

    lat: np.ndarray
    lon: np.ndarray
    pad: int

    @classmethod
    def for_domain(cls, domain: Domain, pad: int) -> Grid:
        lat = LAT0 + RESOLUTION * np.arange(domain.i0 - pad, domain.i1 + pad)
        lon = LON0 + RESOLUTION * np.arange(domain.j0 - pad, domain.j1 + pad)
        return cls(np.round(lat, 2), np.round(lon, 2), pad)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)

    @property
    def inner(self) -> tuple[slice, slice]:
        p = self.pad
        return (slice(p, self.lat.size - p), slice(p, self.lon.size - p))

    def crop(self, field: np.ndarray) -> np.ndarray:
        """The domain part of a work-grid field (a contiguous copy)."""
        return np.ascontiguousarray(field[..., self.inner[0], self.inner[1]])

    def index(self, lon: float, lat: float) -> tuple[int, int] | None:
        """Nearest cell of a point, or None outside the work grid."""
        i = round((lat - self.lat[0]) / RESOLUTION)
        j = round((lon - self.lon[0]) / RESOLUTION)
        if 0 <= i < self.lat.size and 0 <= j < self.lon.size:
            return i, j
        return None


# ------------------------------------------------------------------------------- rasterising
def polygon_mask(grid: Grid, ring: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Cells whose centre lies inside a polygon ring (scanline even-odd rule)."""
    xy = np.asarray(ring, float)
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    mask = np.zeros(grid.shape, bool)
    rows = np.flatnonzero((grid.lat >= y0.min()) & (grid.lat <= y0.max()))
    for i in rows:
        y = grid.lat[i]
        hit = (y0 <= y) != (y1 <= y)
        if not hit.any():
            continue
        xc = np.sort(x0[hit] + (y - y0[hit]) * (x1[hit] - x0[hit]) / (y1[hit] - y0[hit]))
        mask[i] = np.searchsorted(xc, grid.lon, side="right") % 2 == 1
    return mask


def _polyline_points(pts: tuple[tuple[float, float], ...], step: float = 0.05) -> np.ndarray:
    """Points every `step` degrees along a polyline, with the length (deg) each stands for."""
    out = []
    for (xa, ya), (xb, yb) in pairwise(pts):
        n = max(1, int(np.hypot(xb - xa, yb - ya) / step))
        f = (np.arange(n) + 0.5) / n
        seg = np.hypot(xb - xa, yb - ya) / n
        out.append(np.column_stack([xa + f * (xb - xa), ya + f * (yb - ya), np.full(n, seg)]))
    return np.concatenate(out)


def _raster(grid: Grid, points: np.ndarray) -> np.ndarray:
    """Sum point weights (lon, lat, weight rows) into their nearest cells."""
    out = np.zeros(grid.shape, np.float64)
    for lon, lat, w in points:
        ij = grid.index(lon, lat)
        if ij is not None:
            out[ij] += w
    return out


def _ridge(grid: Grid, height: float, width_km: float, pts: tuple[tuple[float, float], ...], out: np.ndarray):
    """Raise `out` to a Gaussian ridge along a polyline (in place, by maximum)."""
    for (xa, ya), (xb, yb) in pairwise(pts):
        coslat = np.cos(np.radians(0.5 * (ya + yb)))
        reach = 3.0 * width_km / KM_PER_DEG
        rows = np.flatnonzero((grid.lat >= min(ya, yb) - reach) & (grid.lat <= max(ya, yb) + reach))
        cols = np.flatnonzero(
            (grid.lon >= min(xa, xb) - reach / coslat) & (grid.lon <= max(xa, xb) + reach / coslat)
        )
        if rows.size == 0 or cols.size == 0:
            continue
        px = (grid.lon[cols][None, :] - xa) * coslat
        py = grid.lat[rows][:, None] - ya
        dx, dy = (xb - xa) * coslat, yb - ya
        t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        d_km = np.hypot(px - t * dx, py - t * dy) * KM_PER_DEG
        h = height * np.exp(-((d_km / width_km) ** 2))
        block = out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        np.maximum(block, h, out=block)


# --------------------------------------------------------------------------------- the maps
class StaticMaps:
    """Fixed geography on a work grid, computed lazily once per generator."""

    def __init__(self, grid: Grid):
        self.grid = grid

    @cached_property
    def land(self) -> np.ndarray:
        """Land fraction 0..1 (cell-centre mask softened over about one cell)."""
        mask = np.zeros(self.grid.shape, bool)
        for ring in geo.LAND:
            mask |= polygon_mask(self.grid, ring)
        for ring in geo.WATER:
            mask &= ~polygon_mask(self.grid, ring)
        return np.clip(gaussian_filter(mask.astype(np.float32), 0.6, mode="nearest"), 0.0, 1.0)

    @cached_property
    def orography(self) -> np.ndarray:
        """Surface height (m): Gaussian ridges and massifs over a low base, zero at sea."""
        oro = np.zeros(self.grid.shape, np.float32)
        for height, width, pts in geo.RIDGES:
            _ridge(self.grid, height, width, pts, oro)
        for height, radius, lon, lat in geo.MASSIFS:
            _ridge(self.grid, height, radius, ((lon, lat), (lon + 1e-3, lat)), oro)
        return ((oro + 80.0) * self.land).astype(np.float32)

    @cached_property
    def urban(self) -> np.ndarray:
        """Urban emission density (about 0.1 per million inhabitants at a city centre)."""
        pts = np.array([(lon, lat, pop) for _, lon, lat, pop in geo.CITIES], float)
        r = _raster(self.grid, pts)
        return (0.6 * gaussian_filter(r, 1.0) + 0.4 * gaussian_filter(r, 3.0)).astype(np.float32)

    @cached_property
    def industry(self) -> np.ndarray:
        pts = np.array([(lon, lat, s) for _, lon, lat, s in geo.INDUSTRY], float)
        # Tall stacks: plumes reach the ground spread over ~20 km around the source.
        return gaussian_filter(_raster(self.grid, pts), 2.0).astype(np.float32)

    @cached_property
    def shipping(self) -> np.ndarray:
        pts = np.concatenate([_polyline_points(p) * [1.0, 1.0, w] for w, p in geo.LANES])
        return gaussian_filter(_raster(self.grid, pts), 1.2).astype(np.float32)

    @cached_property
    def regional(self) -> np.ndarray:
        """Diffuse emissions of the densely populated regions (roads, towns, farms): the cities spread
        over about 1.5°, the background that fills the Po Valley or the Benelux between their cities.

        Summed city by city over the whole city list, so a crop is the same crop of the full grid."""
        sigma = 15.0  # cells
        out = np.zeros(self.grid.shape, np.float64)
        for _, lon, lat, pop in geo.CITIES:
            gy = np.exp(-0.5 * ((self.grid.lat - lat) / (RESOLUTION * sigma)) ** 2)
            gx = np.exp(-0.5 * ((self.grid.lon - lon) / (RESOLUTION * sigma)) ** 2)
            if gy.max() > 1e-4 and gx.max() > 1e-4:
                out += pop * np.outer(gy, gx)
        return (out / (2.0 * np.pi * sigma**2)).astype(np.float32)

    def emission(self, key: str) -> np.ndarray:
        """Emission map of a transported tracer: ``nox``, ``so2`` or ``ppm`` (primary PM)."""
        if key == "nox":
            e = self.urban + 0.2 * self.industry + 0.25 * self.shipping + 0.004 * self.land
        elif key == "so2":
            e = 0.03 * self.urban + self.industry + 0.3 * self.shipping
        elif key == "ppm":
            e = self.urban + 0.15 * self.industry + 0.05 * self.shipping + 0.006 * self.land
        else:
            raise KeyError(key)
        return e.astype(np.float32)

    # ------------------------------------------------------------------ indices (domain crop)
    @cached_property
    def urban_index(self) -> np.ndarray:
        """0 in the countryside, towards 1 in big city centres."""
        return self.grid.crop(1.0 - np.exp(-self.urban / 0.1)).astype(np.float32)

    @cached_property
    def regional_index(self) -> np.ndarray:
        """0 in empty regions, towards 1 in the most densely populated ones (the Po Valley, the Ruhr)."""
        return self.grid.crop(1.0 - np.exp(-self.regional / 0.0035)).astype(np.float32)

    @cached_property
    def industry_index(self) -> np.ndarray:
        """0 away from industrial point sources, towards 1 at big ones."""
        return self.grid.crop(1.0 - np.exp(-self.industry / 0.02)).astype(np.float32)

    @cached_property
    def coast_index(self) -> np.ndarray:
        """1 along coastlines, 0 far inland or offshore."""
        ls = gaussian_filter(self.land, 3.0, mode="nearest")
        return self.grid.crop(4.0 * ls * (1.0 - ls)).astype(np.float32)

    @cached_property
    def mountain_index(self) -> np.ndarray:
        return self.grid.crop(np.clip(self.orography / 2000.0, 0.0, 1.0)).astype(np.float32)
