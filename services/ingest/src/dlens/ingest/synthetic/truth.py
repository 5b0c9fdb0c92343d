"""Surface chemistry: hourly O3, NO2, SO2 and PM10 (µg/m3) from a weather and a set of plume fields.

Emissions (cities, industry, ships, a diffuse regional background) are carried by each day's wind into
plume fields anchored at 00 UTC; an hour blends the two anchors around it and applies cheap hourly
physics: traffic and heating cycles, dilution by the boundary layer and by the wind, NO2 photolysis,
ozone photochemistry with a saturating tail and titration by NO2, night-time ozone loss, SO2 fumigation,
PM background with stagnation episodes, sea salt and Saharan dust. The truth evaluates it on the true
weather and true plumes; every member evaluates the same formulas on the forecast weather and its own
(displaced, blurred) plumes; see :mod:`.members`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from dlens.ingest.synthetic.caching import cached
from dlens.ingest.synthetic.static import Grid, StaticMaps
from dlens.ingest.synthetic.transport import Displacer, plume, wind_in_cells
from dlens.ingest.synthetic.weather import BLH_REF, HourWeather, Weather

LIFETIME_H = {"nox": 6.0, "so2": 15.0, "ppm": 24.0}
WIND_REF = 3.0  # m/s: wind speed at which ventilation neither adds nor removes


@dataclass(frozen=True)
class ChemistryParams:
    """Calibration constants (tuned so the Milan cell resembles the CAMS reanalysis there)."""

    k_no2: float = 180.0  # µg/m3 per unit of NOx plume at reference dilution
    no2_season: float = 0.3  # NO2 emissions lower by this share in July, higher in January
    no2_regional: float = 5.5  # NO2 (µg/m3) of the diffuse regional background at full land emission
    dilution_exponent: float = 0.45
    ventilation_exponent: float = 0.15
    o3_base: float = 68.0  # regional O3 (µg/m3) at the annual mean
    o3_base_season: float = 32.0  # + this times the ozone season (+1 at its peak day, -1 half a year later)
    o3_season_peak: float = 160.0  # day of year of the background ozone maximum (late spring, early summer)
    o3_photo: float = 1.6  # afternoon photochemical boost at full sun, over land
    o3_saturation: float = 185.0  # O3 (µg/m3) above which production saturates
    o3_weather: float = 0.5  # log response of O3 to the regional ozone driver
    o3_titration: float = 42.0  # NO2 (µg/m3) that divides ozone by e
    o3_titration_season: float = 20.0  # o3_titration this much lower in winter, higher in summer
    o3_night_loss: float = 0.06  # per hour of stable night-time boundary layer, over land
    k_so2: float = 380.0
    so2_dilution: float = 0.4  # exponent of the boundary-layer dilution of SO2 plumes
    so2_stagnation: float = 0.3  # log response of the regional SO2 background to the stagnation driver
    k_pm: float = 140.0
    pm_background: float = 17.0
    pm_background_season: float = 6.5
    pm_stagnation: float = 0.5  # log response of PM to the stagnation driver
    pm_stagnation_season: float = 0.25  # the response is larger in winter, smaller in summer, by this share
    pm_dilution: float = 0.4  # exponent of the boundary-layer dilution of primary PM
    dust_peak: float = 35.0  # PM10 (µg/m3) of a strong dust episode at the source latitudes
    dust_onset: float = 0.7  # dust driver (unit variance) above which an episode carries dust

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


def saturate(value: np.ndarray, level: float) -> np.ndarray:
    """`value` unchanged well below `level`, bent over smoothly towards `level` above it."""
    x = value / np.float32(level)
    x *= x
    root = np.float32(1.0) + x * x * x  # 1 + x**6, in products (numpy's float power is not vectorised)
    np.log(root, out=root)
    root *= np.float32(1.0 / 6.0)
    np.exp(root, out=root)  # (1 + x**6) ** (1/6)
    return np.divide(value, root, dtype=np.float32)


class HourChemistry:
    """Per-hour multiplicative and background fields of one weather, shared by every plume set."""

    def __init__(self, chem: Chemistry, hw: HourWeather):
        self.c, self.hw, self.p = weakref.proxy(chem), hw, chem.params

    @cached_property
    def _log_wind(self) -> np.ndarray:
        return np.log(self.hw.wind_speed / np.float32(WIND_REF))

    def _dilution(self, exponent: float) -> np.ndarray:
        """(BLH_REF / blh) ** exponent times (WIND_REF / wind) ** ventilation_exponent, in one exp."""
        log_dilution = np.float32(-exponent) * (self.hw.log_blh - np.float32(np.log(BLH_REF)))
        log_dilution -= np.float32(self.p.ventilation_exponent) * self._log_wind
        return np.exp(log_dilution, out=log_dilution)

    @cached_property
    def dilution(self) -> np.ndarray:
        return self._dilution(self.p.dilution_exponent)

    @cached_property
    def no2_factor(self) -> np.ndarray:
        hw = self.hw
        traffic = traffic_profile(hw.local_hour)[None, :]
        return (
            (self.p.k_no2 * (1.0 - self.p.no2_season * hw.s))
            * traffic
            * self.dilution
            * (1.0 - 0.45 * hw.sun)
        )

    @cached_property
    def no2_background(self) -> np.ndarray:
        regional = (
            self.p.no2_regional * self.c.static.regional_index * self.dilution * (1.0 - 0.4 * self.hw.sun)
        )
        return (0.6 + 0.7 * self.c.land) * (1.0 - 0.3 * self.hw.s) + regional

    @cached_property
    def o3_scale(self) -> np.ndarray:
        """Regional ozone times photochemistry and night-time deposition over land."""
        hw, p, land, mountain = self.hw, self.p, self.c.land, self.c.static.mountain_index
        ozone_season = np.cos(2.0 * np.pi * (hw.doy - p.o3_season_peak) / 365.25)
        base = (p.o3_base + p.o3_base_season * ozone_season) * (1.0 + 0.12 * (1.0 - land) + 0.25 * mountain)
        photo = 1.0 + p.o3_photo * hw.sun_lagged * (0.55 + 0.45 * land) * (1.0 - 0.6 * mountain)
        deposition = np.exp(
            -p.o3_night_loss * land * (1.0 - 0.8 * mountain) * night_hours(hw.local_hour, hw.s)[None, :]
        )
        return saturate(base * photo * np.exp(p.o3_weather * hw.rho), p.o3_saturation) * deposition

    @cached_property
    def o3_titration(self) -> np.float32:
        """Inverse of the NO2 amount that divides ozone by e."""
        return np.float32(1.0 / (self.p.o3_titration + self.p.o3_titration_season * self.hw.s))

    @cached_property
    def so2_factor(self) -> np.ndarray:
        fumigation = 1.0 + 0.5 * _bump(self.hw.local_hour, 9.0, 2.5)[None, :]
        return (self.p.k_so2 * (1.0 - 0.3 * self.hw.s)) * self._dilution(self.p.so2_dilution) * fumigation

    @cached_property
    def so2_background(self) -> np.ndarray:
        stagnation = np.exp(self.p.so2_stagnation * self.hw.stagnation * self.c.land)
        return (0.6 + 1.0 * self.c.land) * (1.0 - 0.3 * self.hw.s) * stagnation

    @cached_property
    def pm_factor(self) -> np.ndarray:
        heating = 1.0 - 0.5 * self.hw.s + 0.3 * _bump(self.hw.local_hour, 20.0, 3.0)[None, :]
        return self.p.k_pm * heating * self._dilution(self.p.pm_dilution)

    @cached_property
    def pm_background(self) -> np.ndarray:
        hw, p, land = self.hw, self.p, self.c.land
        bg = (p.pm_background - p.pm_background_season * hw.s) * (0.6 + 0.4 * land)
        response = p.pm_stagnation * (1.0 - p.pm_stagnation_season * hw.s)
        secondary = np.exp(response * hw.stagnation * (0.5 + 0.5 * self.c.static.regional_index) - 0.12)
        u, v = hw.wind10
        sea_salt = (1.0 - land) * (2.0 + 0.12 * (u * u + v * v))
        return bg * secondary + sea_salt + self.dust

    @cached_property
    def dust(self) -> np.ndarray:
        """Saharan dust: strong near Africa; a strong episode reaches further north."""
        strength = np.clip(self.hw.dust - self.p.dust_onset, 0.0, None)
        reach = 2.5 + 3.8 * strength  # degrees of latitude over which it fades
        north = np.exp(-np.clip(self.c.lat[:, None] - 34.0, 0.0, None) / reach)
        return self.p.dust_peak * strength**2 * north


class Chemistry:
    """Concentrations of a domain from any weather and plume fields; true plumes and hours cached."""

    def __init__(self, weather: Weather, static: StaticMaps, grid: Grid, params: ChemistryParams):
        self.weather, self.static, self.grid, self.params = weather, static, grid, params
        self.land, self.orography, self.lat = weather.land, weather.orography, weather.lat

    @cached(maxsize=10)
    def hour(self, hour: int, phase: int = 0) -> HourChemistry:
        """The chemistry of the true weather at an hour (its diurnal cycle `phase` hours late)."""
        return HourChemistry(self, self.weather.at(hour, phase))

    @cached(maxsize=12)
    def forecast_hour(self, run_day: int, lead: int, phase: int = 0) -> HourChemistry:
        """The chemistry of run `run_day`'s forecast weather at `lead` hours (its diurnal cycle `phase`
        hours late)."""
        return HourChemistry(self, self.weather.forecast_at(run_day, lead, phase))

    @cached(maxsize=4)
    def mover(self, run_day: int | None, day: int) -> Displacer:
        """The displacement along the transport wind at 00 UTC of `day`: the true wind (`run_day` None) or
        run `run_day`'s forecast of it, on the padded work grid."""
        drivers = self.weather.truth_drivers if run_day is None else self.weather.forecast_drivers(run_day)
        u, v = self.weather.wind(24 * day, drivers, work=True)
        return Displacer(*wind_in_cells(u, v, self.grid.lat))

    @cached(maxsize=12)
    def plume_work(self, tracer: str, day: int, run_day: int | None = None) -> np.ndarray:
        """Plume field of a tracer at 00 UTC of a day (work grid), under the true wind or, given
        `run_day`, under that run's forecast wind."""
        return plume(self.static.emission(tracer), self.mover(run_day, day), LIFETIME_H[tracer])

    def truth_plume(self, tracer: str, day: int) -> np.ndarray:
        return self.plume_work(tracer, day)[self.grid.inner]

    def evaluate(
        self, species: str, hc: HourChemistry, hour: int, tracer: Callable[[str, int], np.ndarray]
    ) -> np.ndarray:
        """Concentration at an hour from the chemistry `hc` and the plume anchors ``tracer(name, day)``."""
        day, w = hour // 24, (hour % 24) / 24.0

        def blended(name: str) -> np.ndarray:
            a = tracer(name, day)
            return a if w == 0 else a + np.float32(w) * (tracer(name, day + 1) - a)

        if species in ("no2", "o3"):
            no2 = hc.no2_background + hc.no2_factor * blended("nox")
            return no2 if species == "no2" else self.ozone(hc, no2)
        if species == "so2":
            return hc.so2_background + hc.so2_factor * blended("so2")
        if species == "pm10":
            return hc.pm_background + hc.pm_factor * blended("ppm")
        raise ValueError(f"unknown species {species!r}")

    @staticmethod
    def ozone(hc: HourChemistry, no2: np.ndarray) -> np.ndarray:
        """Ozone from the regional ozone of the hour, titrated by the NO2 there."""
        ozone = np.multiply(-hc.o3_titration, no2, dtype=np.float32)
        np.exp(ozone, out=ozone)
        ozone *= hc.o3_scale
        return ozone

    def on_forecast_weather(self, species: str, run_day: int, lead: int) -> np.ndarray:
        """A perfect chemistry model driven by the forecast weather: what no combination of members beats."""

        def plumes(tracer: str, day: int) -> np.ndarray:
            return self.plume_work(tracer, day, run_day)[self.grid.inner]

        hour = 24 * run_day + lead
        return self.evaluate(species, self.forecast_hour(run_day, lead), hour, plumes).astype(np.float32)
