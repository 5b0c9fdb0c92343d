"""The hidden truth: hourly surface concentrations (µg/m3) of O3, NO2, SO2 and PM10.

Emissions (cities, industry, ships) are carried by each day's wind into plume fields anchored at
00 UTC; an hour blends the two anchors around it and applies cheap hourly physics: traffic and
heating cycles, boundary-layer dilution, NO2 photolysis, ozone photochemistry and titration by
NO2, PM background with multi-day episodes, sea salt and dust. Members evaluate the same
formulas on their own (displaced, blurred) plume fields; see :mod:`.members`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from dlens.ingest.synthetic.caching import cached
from dlens.ingest.synthetic.static import Grid, StaticMaps
from dlens.ingest.synthetic.transport import plume, wind_in_cells
from dlens.ingest.synthetic.weather import BLH_REF, HourWeather, Weather

LIFETIME_H = {"nox": 6.0, "so2": 15.0, "ppm": 24.0}


@dataclass(frozen=True)
class ChemistryParams:
    """Calibration constants (tuned so the Milan cell resembles the CAMS reanalysis there)."""

    k_no2: float = 330.0  # µg/m3 per unit of NOx plume at reference dilution
    dilution_exponent: float = 0.4
    o3_base: float = 66.0  # regional O3 (µg/m3) at the annual mean
    o3_base_season: float = 25.0  # + this times the season (July +1, January -1)
    o3_photo: float = 1.5  # afternoon photochemical boost at full sun
    o3_titration: float = 40.0  # NO2 (µg/m3) that divides ozone by e
    o3_titration_season: float = 10.0
    o3_night_loss: float = 0.05  # per hour of stable night-time boundary layer, over land
    k_so2: float = 400.0
    k_pm: float = 150.0
    pm_background: float = 19.0
    pm_background_season: float = 6.0

    def to_dict(self) -> dict:
        return asdict(self)


def _bump(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-(((x - centre) / width) ** 2))


def traffic_profile(local_hour: np.ndarray) -> np.ndarray:
    """Road-traffic emission factor by local hour (morning and evening rush hours), mean ~1."""
    return (
        0.6
        + 0.12 * _bump(local_hour, 7.5, 1.5)
        + 0.4 * _bump(local_hour, 19.5, 2.5)
        + 0.25 * _bump(local_hour, 11.0, 3.0)
    )


def night_hours(local_hour: np.ndarray, s: float) -> np.ndarray:
    """Effective hours of night-time ozone loss: grows from sunset, undone as the day layer grows."""
    sunset, sunrise = 19.0 + 1.0 * s, 6.0 - 1.0 * s
    night_len = (sunrise - sunset) % 24.0 + 1.5
    x = (local_hour - sunset) % 24.0
    recovery = np.clip(1.0 - (x - night_len) / 2.5, 0.0, 1.0)
    return np.where(x <= night_len, x, night_len * recovery)


class HourChemistry:
    """Per-hour multiplicative and background fields shared by the truth and all members."""

    def __init__(self, chem: Chemistry, hw: HourWeather):
        self.c, self.hw, self.p = weakref.proxy(chem), hw, chem.params

    def _dilution(self, exponent: float) -> np.ndarray:
        return np.exp(-exponent * (self.hw.log_blh - np.float32(np.log(BLH_REF))))

    @cached_property
    def dilution(self) -> np.ndarray:
        return self._dilution(self.p.dilution_exponent)

    @cached_property
    def no2_factor(self) -> np.ndarray:
        hw = self.hw
        traffic = traffic_profile(hw.local_hour)[None, :]
        return (self.p.k_no2 * (1.0 - 0.15 * hw.s)) * traffic * self.dilution * (1.0 - 0.45 * hw.sun)

    @cached_property
    def no2_background(self) -> np.ndarray:
        return (1.5 + 2.5 * self.c.land) * (1.0 - 0.3 * self.hw.s)

    @cached_property
    def o3_scale(self) -> np.ndarray:
        """Regional ozone times photochemistry and night-time deposition over land."""
        hw, p, land = self.hw, self.p, self.c.land
        base = (p.o3_base + p.o3_base_season * hw.s) * (1.0 + 0.15 * (1.0 - land) + 0.2e-3 * self.c.orography)
        photo = 1.0 + p.o3_photo * hw.sun_lagged
        deposition = np.exp(-p.o3_night_loss * land * night_hours(hw.local_hour, hw.s)[None, :])
        return base * photo * deposition * np.exp(0.25 * hw.rho)

    @cached_property
    def o3_titration(self) -> np.float32:
        """Inverse of the NO2 amount that divides ozone by e."""
        return np.float32(1.0 / (self.p.o3_titration + self.p.o3_titration_season * self.hw.s))

    @cached_property
    def so2_factor(self) -> np.ndarray:
        fumigation = 1.0 + 0.5 * _bump(self.hw.local_hour, 9.0, 2.5)[None, :]
        return (self.p.k_so2 * (1.0 - 0.3 * self.hw.s)) * self._dilution(0.4) * fumigation

    @cached_property
    def so2_background(self) -> np.ndarray:
        return (0.6 + 1.0 * self.c.land) * (1.0 - 0.3 * self.hw.s)

    @cached_property
    def pm_factor(self) -> np.ndarray:
        heating = 1.0 - 0.5 * self.hw.s + 0.3 * _bump(self.hw.local_hour, 20.0, 3.0)[None, :]
        return self.p.k_pm * heating * self._dilution(0.3)

    @cached_property
    def pm_background(self) -> np.ndarray:
        hw, p, land = self.hw, self.p, self.c.land
        bg = (p.pm_background - p.pm_background_season * hw.s) * (0.6 + 0.4 * land)
        u, v = hw.wind10
        sea_salt = (1.0 - land) * (2.0 + 0.12 * (u * u + v * v))
        south = np.clip((42.0 - self.c.lat) / 8.0, 0.05, 1.0)[:, None]
        dust = 30.0 * south * np.clip(hw.dust - 1.0, 0.0, None) ** 2
        return bg * np.exp(0.45 * hw.psi - 0.1) + sea_salt + dust


class Chemistry:
    """Truth fields of a domain, with daily plume anchors and per-hour factors cached."""

    def __init__(self, weather: Weather, static: StaticMaps, grid: Grid, params: ChemistryParams):
        self.weather, self.static, self.grid, self.params = weather, static, grid, params
        self.land, self.orography, self.lat = weather.land, weather.orography, weather.lat

    @cached(maxsize=6)
    def hour(self, hour: int) -> HourChemistry:
        return HourChemistry(self, self.weather.at(hour))

    @cached(maxsize=16)
    def wind_cells(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Transport wind at 00 UTC of a day on the work grid, in cells per hour."""
        u, v = self.weather.wind(24 * day, work=True)
        return wind_in_cells(u, v, self.grid.lat)

    @cached(maxsize=8)
    def plume_work(self, tracer: str, day: int) -> np.ndarray:
        """Plume field of a tracer at 00 UTC of a day, on the padded work grid."""
        cx, cy = self.wind_cells(day)
        return plume(self.static.emission(tracer), cx, cy, LIFETIME_H[tracer])

    def truth_plume(self, tracer: str, day: int) -> np.ndarray:
        return self.plume_work(tracer, day)[self.grid.inner]

    def evaluate(self, species: str, hour: int, tracer: Callable[[str, int], np.ndarray]) -> np.ndarray:
        """Concentration at an hour from plume anchors given by ``tracer(name, day)``."""
        hc = self.hour(hour)
        day, w = hour // 24, (hour % 24) / 24.0

        def blended(name: str) -> np.ndarray:
            a = tracer(name, day)
            return a if w == 0 else a + np.float32(w) * (tracer(name, day + 1) - a)

        if species in ("no2", "o3"):
            no2 = hc.no2_background + hc.no2_factor * blended("nox")
            if species == "no2":
                return no2
            return hc.o3_scale * np.exp(-hc.o3_titration * no2)
        if species == "so2":
            return hc.so2_background + hc.so2_factor * blended("so2")
        if species == "pm10":
            return hc.pm_background + hc.pm_factor * blended("ppm")
        raise ValueError(f"unknown species {species!r}")

    def truth(self, species: str, hour: int) -> np.ndarray:
        return self.evaluate(species, hour, self.truth_plume).astype(np.float32)
