"""Concentrations above the surface: a cheap vertical profile applied to the surface fields.

CAMS Regional publishes its fields at heights above ground (`LEVELS_M`: 0, 50, … 5000 m). The generator
makes every field at the surface, as it always has, and lifts it with a profile set by the boundary layer
(height ``h``) of the weather that field ran on: the true weather for the truth and for the members'
analysis states, a member's forecast weather with its own boundary-layer error for a forecast. So a
member's error aloft holds its boundary-layer error, which a surface field only shows through dilution.

With ``c0`` the surface value and ``b`` the free-troposphere background of the species::

    c(z) = b + (c0 - b) · f(z),    f(z) = exp(-k · min(z / h, 1) - max(z - h, 0) / D)

- within the layer the excess over the background decays by ``k`` over the layer's depth: little in a
  deep, convective (afternoon) layer (``k_mixed``), much in a shallow, stable one (``k_stable``), weighted
  by the stability ``log(BLH_REF / h)`` (weight 0 for ``h`` ≥ ~1360 m, 1 for ``h`` ≤ ~110 m);
- above the layer the excess fades to the background over ``D`` metres (entrainment, the residual layer);
- the backgrounds: NO2 and SO2 a fraction of a µg/m3; PM10 a few µg/m3 plus the Saharan dust of the
  hour, which travels aloft (kept up to ``DUST_TOP_M``, fading above); O3 the residual-layer and
  free-tropospheric ozone of the season and of the weather's ozone driver (``O3_FREE``), higher than the
  surface's at night (titration, deposition under the stable layer) and in winter, lower than a sunny
  afternoon's photochemical peak. A member's background is the forecast weather's times its own global
  bias, ``exp(global_)`` (its boundary conditions and chemistry aloft), so the members still differ above
  the layer.

Hence: surface-emitted NO2 and PM10 decrease with height, strongly under a shallow night-time layer; SO2
less so (industrial plumes are emitted high: smaller ``k``, longer ``D``); O3 increases with height where
the surface is depleted, strongly at night under a shallow stable layer and little in a deep afternoon
one. ``f`` lies in [0, 1], so ``c(z)`` lies between ``c0`` and ``b``: positive and finite where they are;
a NaN (missing member) stays NaN. Level 0 is never passed through here: the surface fields are returned
unchanged.

The analyses aloft: the truth and each member's analysis state are lifted through the true boundary layer
(a member's with its own bias), and the surface stations pull the analysis towards the truth less the
higher it is, ``ρ(z) = ρ · exp(-z / PULL_HEIGHT_M)`` (CAMS assimilates surface stations: aloft its
analysis is mostly the models'), the observations' error shrinking with the pull as at the surface.

What it leaves out (against CAMS, whose CTMs resolve the column): no elevated emission peaks (a stack plume
aloft at night, above the stable layer), no transport aloft different from the surface's (wind shear),
no orography (heights are above ground, as CAMS's levels), no chemistry of its own aloft.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dlens.ingest.synthetic.weather import BLH_REF


@dataclass(frozen=True)
class Profile:
    """The vertical profile of one species."""

    background: float  # µg/m3 in the free troposphere (O3: see O3_FREE; PM10: plus the dust aloft)
    k_mixed: float  # decay of the excess over the layer's depth in a deep, convective layer
    k_stable: float  # ... in a shallow, stable layer
    fade_m: float  # above the layer the excess fades over this many metres


PROFILES: dict[str, Profile] = {
    "o3": Profile(background=float("nan"), k_mixed=0.3, k_stable=2.5, fade_m=400.0),
    "no2": Profile(background=0.2, k_mixed=0.8, k_stable=3.0, fade_m=250.0),
    "so2": Profile(background=0.2, k_mixed=0.3, k_stable=1.0, fade_m=600.0),
    "pm10": Profile(background=3.0, k_mixed=0.4, k_stable=2.0, fade_m=500.0),
}
#: Residual-layer / free-tropospheric O3 (µg/m3): mean, seasonal amplitude (its peak on the surface
#: ozone's, ChemistryParams.o3_season_peak), and log response to the weather's regional ozone driver.
O3_FREE = (90.0, 20.0, 0.25)
DUST_TOP_M, DUST_FADE_M = 3000.0, 1500.0  # Saharan dust: kept up to this height, fading over this above
#: Stability log(BLH_REF / h) at which the layer counts as fully mixed (weight 0), and the range over
#: which the weight grows to fully stable (1).
STABILITY_MIXED, STABILITY_RANGE = -1.0, 2.5
#: The analyses assimilate surface stations only: their pull towards the truth at height z is the
#: surface's times exp(-z / PULL_HEIGHT_M) (0.95 at 50 m, 0.61 at 500 m, 0.37 at 1 km, 0.05 at 3 km).
PULL_HEIGHT_M = 1000.0


def check_level(level: float) -> float:
    """A height above ground in metres (any finite value ≥ 0; the store keeps CAMS's `LEVELS_M`)."""
    z = float(level)
    if not (np.isfinite(z) and z >= 0.0):
        raise ValueError(f"level {level!r}: expected a height above ground in metres, ≥ 0")
    return z


def pull_aloft(level: float) -> float:
    """The share of the surface's pull towards the truth an analysis keeps at `level` metres."""
    return float(np.exp(-check_level(level) / PULL_HEIGHT_M))


def params() -> dict:
    """The profile's constants, as JSON (for the store's provenance)."""
    return {
        "profiles": {
            sp: {**asdict(p), "background": None if sp == "o3" else p.background}
            for sp, p in PROFILES.items()
        },
        "o3_free": list(O3_FREE),
        "dust_top_m": DUST_TOP_M,
        "dust_fade_m": DUST_FADE_M,
        "stability_mixed": STABILITY_MIXED,
        "stability_range": STABILITY_RANGE,
        "pull_height_m": PULL_HEIGHT_M,
    }


class Column:
    """The boundary layer a set of fields ran on: log heights (…, lat, lon), e.g. one per member."""

    def __init__(self, log_blh: np.ndarray):
        log_blh = np.asarray(log_blh, np.float32)
        self.height = np.exp(log_blh)
        self.inverse = np.exp(-log_blh)
        weight = np.float32(np.log(BLH_REF) - STABILITY_MIXED) - log_blh
        weight *= np.float32(1.0 / STABILITY_RANGE)
        self.stable = np.clip(weight, 0.0, 1.0, out=weight)  # 0 deep and mixed .. 1 shallow and stable

    def excess(self, species: str, level: float) -> np.ndarray:
        """f(z): the share of the surface's excess over the background left at `level` metres."""
        p, z = PROFILES[species], np.float32(level)
        within = np.multiply(self.inverse, z)  # z / h, at most 1 below
        np.minimum(within, np.float32(1.0), out=within)
        k = np.multiply(self.stable, np.float32(p.k_stable - p.k_mixed))
        k += np.float32(p.k_mixed)
        within *= k
        above = np.subtract(z, self.height)
        np.maximum(above, np.float32(0.0), out=above)
        above *= np.float32(1.0 / p.fade_m)
        within += above
        np.negative(within, out=within)
        return np.exp(within, out=within)


def background(species: str, level: float, hc) -> np.ndarray | np.float32:
    """The free-troposphere background of `species` at `level` metres under the chemistry `hc` of an hour
    (its weather's ozone driver, season and dust)."""
    if species == "o3":
        hw = hc.hw
        season = np.cos(2.0 * np.pi * (hw.doy - hc.p.o3_season_peak) / 365.25)
        mean, amplitude, weather = O3_FREE
        free = np.multiply(hw.rho, np.float32(weather), dtype=np.float32)
        np.exp(free, out=free)
        free *= np.float32(mean + amplitude * season)
        return free
    b = np.float32(PROFILES[species].background)
    if species != "pm10":
        return b
    z = float(level)
    dust_share = 1.0 if z <= DUST_TOP_M else float(np.exp(-(z - DUST_TOP_M) / DUST_FADE_M))
    return (hc.dust * np.float32(dust_share) + b).astype(np.float32)


def aloft(
    species: str, surface: np.ndarray, level: float, column: Column, hc, scale: np.ndarray | None = None
) -> np.ndarray:
    """The fields `surface` (…, lat, lon) lifted to `level` metres above ground through the boundary layer
    `column` (same shape, or broadcastable) and the chemistry `hc` of the hour; `scale` (broadcastable)
    multiplies the background (a member's own free troposphere); a new float32 array."""
    z = check_level(level)
    b = background(species, z, hc)
    if scale is not None:
        b = np.multiply(b, scale, dtype=np.float32)
    f = column.excess(species, z)
    out = np.subtract(surface, b, dtype=np.float32)
    out *= f
    out += b
    return out
