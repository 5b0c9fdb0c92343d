"""The CAMS Regional MACCGE01 grid and the domains (crops) of it that a store can hold."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RESOLUTION = 0.1
LAT0, NLAT = 30.05, 420  # cell centres 30.05N .. 71.95N, ascending
LON0, NLON = -24.95, 700  # cell centres 24.95W .. 44.95E, ascending
_TOL = 1e-3


@dataclass(frozen=True)
class Domain:
    """A rectangular crop of MACCGE01, as inclusive row/column index ranges into the full grid."""

    name: str
    i0: int  # first latitude row (south)
    i1: int  # one past the last row
    j0: int  # first longitude column (west)
    j1: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.i1 - self.i0, self.j1 - self.j0)

    @property
    def latitude(self) -> np.ndarray:
        return np.round(LAT0 + RESOLUTION * np.arange(self.i0, self.i1), 2)

    @property
    def longitude(self) -> np.ndarray:
        return np.round(LON0 + RESOLUTION * np.arange(self.j0, self.j1), 2)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """South, north, west, east cell centres."""
        lat, lon = self.latitude, self.longitude
        return float(lat[0]), float(lat[-1]), float(lon[0]), float(lon[-1])

    def spec(self) -> str:
        """The ``S,N,W,E`` string that recreates this domain."""
        return ",".join(f"{v:.2f}" for v in self.bounds)

    def to_attrs(self) -> dict:
        return {"name": self.name, "bounds_snwe": list(self.bounds), "shape": list(self.shape)}


FULL = Domain("full", 0, NLAT, 0, NLON)

#: Named crops. `demo` is the Po Valley and the Alps (Milan, Turin, Venice, Zurich, Munich edge):
#: cities, mountains, a coast and the Adriatic in 64 x 96 cells, small enough for the CPU budget.
NAMED_DOMAINS: dict[str, str] = {
    "full": FULL.spec(),
    "demo": "42.05,48.35,5.05,14.55",
    "tiny": "44.05,46.35,7.05,10.15",
}


def crop_of(outer: Domain, inner: Domain) -> tuple[slice, slice]:
    """Row and column slices of `inner` within `outer`; ValueError when it is not inside."""
    if not (outer.i0 <= inner.i0 and inner.i1 <= outer.i1 and outer.j0 <= inner.j0 and inner.j1 <= outer.j1):
        raise ValueError(
            f"domain {inner.spec()} is not inside the store's domain {outer.name} ({outer.spec()} S,N,W,E)"
        )
    return slice(inner.i0 - outer.i0, inner.i1 - outer.i0), slice(inner.j0 - outer.j0, inner.j1 - outer.j0)


def lat_index(lat: float) -> int:
    """Row of a MACCGE01 cell centre, or ValueError if `lat` is not one."""
    return _index(lat, LAT0, NLAT, "latitude")


def lon_index(lon: float) -> int:
    """Column of a MACCGE01 cell centre (longitude in [-180, 180)), or ValueError."""
    return _index(lon, LON0, NLON, "longitude")


def _index(value: float, origin: float, n: int, what: str) -> int:
    if not math.isfinite(value):
        raise ValueError(f"{what} {value} is not a finite number")
    pos = (value - origin) / RESOLUTION
    idx = round(pos)
    if abs(pos - idx) * RESOLUTION > _TOL:
        raise ValueError(f"{what} {value} is not a MACCGE01 cell centre (0.1° grid on x.x5)")
    if not 0 <= idx < n:
        raise ValueError(f"{what} {value} lies outside the MACCGE01 grid")
    return idx


def domain_from_bounds(
    south: float, north: float, west: float, east: float, name: str | None = None
) -> Domain:
    """The domain whose first and last cell centres are the given bounds."""
    i0, i1, j0, j1 = lat_index(south), lat_index(north), lon_index(west), lon_index(east)
    if i1 < i0 or j1 < j0:
        raise ValueError(f"empty domain S={south} N={north} W={west} E={east}")
    return Domain(name or f"{south:.2f},{north:.2f},{west:.2f},{east:.2f}", i0, i1 + 1, j0, j1 + 1)


def parse_domain(text: str) -> Domain:
    """A named domain (`full`, `demo`, `tiny`) or an explicit ``S,N,W,E`` crop in degrees."""
    key = text.strip().lower()
    if key in NAMED_DOMAINS:
        s, n, w, e = (float(v) for v in NAMED_DOMAINS[key].split(","))
        return domain_from_bounds(s, n, w, e, name=key)
    try:
        s, n, w, e = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(
            f"domain {text!r}: expected one of {', '.join(NAMED_DOMAINS)} or S,N,W,E in degrees"
        ) from None
    return domain_from_bounds(s, n, w, e)


def domain_of(latitude: np.ndarray, longitude: np.ndarray) -> Domain:
    """The domain spanned by ascending coordinate vectors, which must be contiguous MACCGE01 cells."""
    lat = np.asarray(latitude, dtype=float)
    lon = np.asarray(longitude, dtype=float)
    dom = domain_from_bounds(lat[0], lat[-1], lon[0], lon[-1])
    if dom.shape != (lat.size, lon.size) or not (
        np.allclose(lat, dom.latitude, atol=_TOL) and np.allclose(lon, dom.longitude, atol=_TOL)
    ):
        raise ValueError("coordinates are not contiguous 0.1° MACCGE01 cells")
    return dom


def normalise_longitude(lon: np.ndarray) -> np.ndarray:
    """Map longitudes to [-180, 180)."""
    return ((np.asarray(lon, dtype=float) + 180.0) % 360.0) - 180.0


def inside(domain: Domain, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Boolean per point: within the domain's cells (cell centres ± half a cell)."""
    half = RESOLUTION / 2
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    south, north, west, east = domain.bounds
    return (lat >= south - half) & (lat <= north + half) & (lon >= west - half) & (lon <= east + half)


def bilinear_weights(
    domain: Domain, lat: np.ndarray, lon: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear interpolation of points onto a domain's cell centres, clamped at its edges: (n, 4) row and
    column indices of the four neighbours and their float32 weights; a (lat, lon) field at the points is
    `(field[rows, cols] * weights).sum(axis=1)`."""
    nlat, nlon = domain.shape
    y = np.clip((lat - domain.latitude[0]) / RESOLUTION, 0.0, nlat - 1.0)
    x = np.clip((lon - domain.longitude[0]) / RESOLUTION, 0.0, nlon - 1.0)
    i0, j0 = (
        np.minimum(np.floor(y).astype(int), max(nlat - 2, 0)),
        np.minimum(np.floor(x).astype(int), max(nlon - 2, 0)),
    )
    i1, j1 = np.minimum(i0 + 1, nlat - 1), np.minimum(j0 + 1, nlon - 1)
    fy, fx = np.clip(y - i0, 0.0, 1.0), np.clip(x - j0, 0.0, 1.0)
    rows = np.stack([i0, i0, i1, i1], axis=1)
    cols = np.stack([j0, j1, j0, j1], axis=1)
    weights = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], axis=1)
    return rows, cols, weights.astype(np.float32)
