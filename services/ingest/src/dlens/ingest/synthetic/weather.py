"""Two weathers: the hidden true weather and the IFS-like forecast of it.

The true weather is a set of smooth random driver fields per day, anchored at 00 UTC (wind, temperature,
boundary-layer and cloud anomalies, an ozone driver, multi-day stagnation and dust episodes); any hour
blends the anchors around it, so a day is computable alone. The forecast of run `r` at lead `L` sees the
same drivers through a synoptic-scale error that grows with lead: a timing error (the drivers of
``h + tau`` instead of ``h``; fronts and episodes early or late) and an amplitude error (a variance-keeping
mix with error anchors every 12 h). Every derived quantity (boundary layer, wind, sunshine, temperature)
is computed the same way from either set of drivers by :class:`HourWeather`.
"""

from __future__ import annotations

import weakref
from functools import cached_property

import numpy as np

from dlens.ingest.synthetic.caching import cached
from dlens.ingest.synthetic.seeding import day_of_year, rng, season
from dlens.ingest.synthetic.smooth import SmoothField, blend, blend_stack
from dlens.ingest.synthetic.static import Grid, StaticMaps

#: Fields drawn per day: name -> lattice spacing (degrees).
DAILY_FIELDS = {"u": 4.0, "v": 4.0, "t": 4.0, "rho": 4.0, "psi": 4.0, "dust": 5.0, "blh": 2.0, "cloud": 2.0}
EPISODE_FIELDS = ("psi", "dust")
EPISODE_DAYS = 2.0  # half-width of the multi-day kernel of stagnation and dust episodes
LEAD_STEP = 12  # hours between the anchors of forecast-error fields
BLH_REF = 500.0
#: Forecast amplitude error (share of the driver's variance replaced by error) at lead 0 and 96 h.
AMPLITUDE_ERROR = {"synoptic": (0.12, 0.45), "local": (0.2, 0.55)}
LOCAL_FIELDS = frozenset({"blh", "cloud"})
#: The amplitude error is larger in winter by this share (smaller in summer): stagnation, inversions and
#: fog are where the boundary-layer forecast, and every CTM run on it, fail together.
AMPLITUDE_SEASON = {"synoptic": -0.25, "local": -0.6}
#: Std of the forecast timing error (hours) at lead 0 and 96 h.
TIMING_ERROR_H = (0.5, 7.0)


def blh_land(local_hour: np.ndarray, s: float) -> np.ndarray:
    """Climatological boundary-layer height over land (m) by local solar hour and season.

    Grows from sunrise to a 14:30 maximum, collapses gradually until an hour after sunset.
    """
    rise, sett, peak = 7.5 - 1.0 * s, 19.0 + 1.0 * s, 14.5
    up = np.sin(0.5 * np.pi * np.clip((local_hour - rise) / (peak - rise), 0.0, 1.0)) ** 2
    down = np.cos(0.5 * np.pi * np.clip((local_hour - peak) / (sett + 1.0 - peak), 0.0, 1.0))
    day = np.clip(np.where(local_hour < peak, up, down), 0.0, 1.0) ** 1.3
    night, top = 170.0 + 60.0 * s, 950.0 + 550.0 * s
    return night + (top - night) * day


def cloud_transmission(z: np.ndarray) -> np.ndarray:
    """Share of clear-sky sunshine reaching the ground for a cloud driver z (about N(0, 1))."""
    return (0.25 + 0.75 / (1.0 + np.exp(-(0.8 + 1.2 * z)))).astype(np.float32)


def amplitude_error(name: str, lead: float, s: float = 0.0) -> float:
    """Share (std) of a forecast driver that is error at `lead` hours, in season `s` (+1 in July: summer's
    convective weather is the less predictable)."""
    kind = "local" if name in LOCAL_FIELDS else "synoptic"
    first, last = AMPLITUDE_ERROR[kind]
    b = (first + (last - first) * float(np.clip(lead, 0.0, 96.0)) / 96.0) * (1.0 + AMPLITUDE_SEASON[kind] * s)
    return min(b, 0.9)


def timing_error_std(lead: float) -> float:
    return (
        TIMING_ERROR_H[0] + (TIMING_ERROR_H[1] - TIMING_ERROR_H[0]) * float(np.clip(lead, 0.0, 96.0)) / 96.0
    )


class TrueDrivers:
    """The true weather's driver lattices at any hour."""

    key = None

    def __init__(self, weather: Weather):
        self.w = weakref.proxy(weather)

    def nodes(self, name: str, hour: float) -> np.ndarray:
        return self.w.episode_nodes(name, hour) if name in EPISODE_FIELDS else self.w.nodes(name, hour)


class ForecastDrivers:
    """The drivers as the forecast of one run sees them: timing and amplitude errors growing with lead."""

    def __init__(self, weather: Weather, run_day: int):
        self.w, self.run_day, self.key = weakref.proxy(weather), run_day, run_day
        self.timing_z = float(rng(weather.seed, "fc-timing", run_day).standard_normal())

    def nodes(self, name: str, hour: float) -> np.ndarray:
        lead = hour - 24 * self.run_day
        shifted = hour + self.timing_z * timing_error_std(lead)
        truth = self.w.episode_nodes(name, shifted) if name in EPISODE_FIELDS else self.w.nodes(name, shifted)
        b = amplitude_error(name, lead, season(hour))
        error = self.w.forecast_error_nodes(name, self.run_day, lead)
        return (np.float32(np.sqrt(1.0 - b * b)) * truth + np.float32(b) * error).astype(np.float32)


class HourWeather:
    """The weather at one hour on the domain, from a set of drivers (true or a run's forecast).

    `clock` (default `hour`) is the hour the diurnal cycle and the sun are computed for: a model whose
    diurnal cycle runs late sees the drivers of the hour with the clock of another.
    """

    def __init__(
        self, weather: Weather, hour: int, drivers: TrueDrivers | ForecastDrivers, clock: int | None = None
    ):
        self.w, self.hour, self.drivers = weakref.proxy(weather), hour, drivers
        clock = hour if clock is None else clock
        self.hod = clock % 24
        self.doy = day_of_year(clock)
        self.s = season(clock)
        self.local_hour = ((self.hod + weather.lon / 15.0) % 24.0).astype(np.float32)

    def _cosz(self, lag_h: float) -> np.ndarray:
        decl = np.radians(23.44) * np.sin(2.0 * np.pi * (self.doy - 81.0) / 365.25)
        phi = np.radians(self.w.lat)[:, None]
        omega = np.radians(15.0 * (self.local_hour - lag_h - 12.0))[None, :]
        return (np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(omega)).astype(np.float32)

    def driver(self, name: str) -> np.ndarray:
        """A unit-variance driver field on the domain."""
        return self.w.driver_field(self.drivers, name, self.hour)

    @cached_property
    def cosz(self) -> np.ndarray:
        """Cosine of the solar zenith angle."""
        return self._cosz(0.0)

    @cached_property
    def sun(self) -> np.ndarray:
        """Sunshine 0..1: clear-sky elevation factor times cloud transmission."""
        return np.clip(self.cosz, 0.0, None) * self.cloud

    @cached_property
    def sun_lagged(self) -> np.ndarray:
        """Sunshine of the last ~10 h, fading memory: ozone builds up and outlives the sun."""
        lags = (1.0, 3.0, 5.0, 7.0, 9.0)
        weights = np.exp(-np.array(lags) / 5.0)
        weights /= weights.sum()
        lagged = sum(w * np.clip(self._cosz(lag), 0.0, None) for w, lag in zip(weights, lags))
        return lagged * self.cloud

    @cached_property
    def cloud_z(self) -> np.ndarray:
        return self.driver("cloud")

    @cached_property
    def cloud(self) -> np.ndarray:
        return cloud_transmission(self.cloud_z)

    @cached_property
    def wind(self) -> tuple[np.ndarray, np.ndarray]:
        """Transport wind (m/s, east and north) at the top of the surface layer."""
        return self.w.wind(self.hour, self.drivers, work=False)

    @cached_property
    def wind10(self) -> tuple[np.ndarray, np.ndarray]:
        """10 m wind: the transport wind slowed down over land."""
        u, v = self.wind
        f = 1.0 - 0.3 * self.w.land
        return u * f, v * f

    @cached_property
    def wind_speed(self) -> np.ndarray:
        """10 m wind speed (m/s), at least 0.5."""
        u, v = self.wind10
        return np.maximum(np.hypot(u, v), np.float32(0.5))

    @cached_property
    def stagnation(self) -> np.ndarray:
        """The multi-day stagnation driver (unit variance): high pressure, weak wind, shallow layers."""
        return self.driver("psi")

    @cached_property
    def log_blh(self) -> np.ndarray:
        land = self.w.land
        lb_land = np.log(blh_land(self.local_hour, self.s)).astype(np.float32)[None, :]
        lb_sea = np.float32(np.log(550.0 - 100.0 * self.s))
        anomaly = 0.45 * self.driver("blh") - 0.25 * self.stagnation * land
        return land * lb_land + (1.0 - land) * lb_sea + anomaly

    @cached_property
    def stability(self) -> np.ndarray:
        """How shallow the boundary layer is: log(BLH_REF / blh), clipped (positive is stable)."""
        return np.clip(np.float32(np.log(BLH_REF)) - self.log_blh, -1.5, 2.5)

    @cached_property
    def ssrd(self) -> np.ndarray:
        """Surface solar radiation downwards (W m-2)."""
        return 1050.0 * np.clip(self.cosz, 0.0, None) ** 1.2 * self.cloud

    @cached_property
    def temperature_anomaly(self) -> np.ndarray:
        """The daily temperature driver (unit variance): warm spells and cold snaps."""
        return self.driver("t")

    @cached_property
    def t2m(self) -> np.ndarray:
        """2 m temperature (K)."""
        w, s = self.w, self.s
        diurnal = np.cos(2.0 * np.pi * (self.local_hour - 15.0) / 24.0)[None, :]
        return (
            288.0 - 0.6 * (w.lat[:, None] - 45.0) + s * (7.0 + 5.0 * w.land) - 0.0065 * w.orography
            + w.land * (3.0 + 1.5 * s) * diurnal + 3.0 * self.temperature_anomaly
        ).astype(np.float32)  # fmt: skip

    @cached_property
    def rho(self) -> np.ndarray:
        """Regional ozone anomaly driver (unit variance), warmer weather -> more ozone."""
        return 0.6 * self.temperature_anomaly + 0.8 * self.driver("rho")

    @cached_property
    def dust(self) -> np.ndarray:
        """Multi-day Saharan dust driver (unit variance)."""
        return self.driver("dust")

    def meteo(self, variable: str) -> np.ndarray:
        """A predictor of the `meteo` group: t2m (K), blh (m), u10 / v10 (m/s), ssrd (W m-2)."""
        out = {
            "t2m": lambda: self.t2m, "blh": lambda: np.exp(self.log_blh), "u10": lambda: self.wind10[0],
            "v10": lambda: self.wind10[1], "ssrd": lambda: self.ssrd,
        }  # fmt: skip
        if variable not in out:
            raise ValueError(f"unknown meteo variable {variable!r}")
        return np.asarray(out[variable](), np.float32)


class Weather:
    """The true weather of a domain and the forecasts of it, deterministic from (seed, date)."""

    def __init__(self, seed: int, grid: Grid, static: StaticMaps):
        self.seed, self.grid = seed, grid
        self.lat = grid.lat[grid.inner[0]].astype(np.float32)
        self.lon = grid.lon[grid.inner[1]].astype(np.float32)
        self.land = grid.crop(static.land)
        self.orography = grid.crop(static.orography)
        self.samplers = {sp: SmoothField(self.lat, self.lon, sp) for sp in set(DAILY_FIELDS.values())}
        self.samplers_work = {4.0: SmoothField(grid.lat, grid.lon, 4.0)}
        self.noise = SmoothField(self.lat, self.lon, 2.0)
        self.truth_drivers = TrueDrivers(self)

    # ---------------------------------------------------------------------------- true weather
    @cached(maxsize=256)
    def day_nodes(self, name: str, day: int) -> np.ndarray:
        sampler = self.samplers[DAILY_FIELDS[name]]
        return sampler.draw(rng(self.seed, "weather-" + name, day))

    def nodes(self, name: str, hour: float) -> np.ndarray:
        """Lattice values of a daily field at an hour (blend of the two 00 UTC anchors)."""
        day = int(hour // 24)
        w = (hour - 24 * day) / 24.0
        a = self.day_nodes(name, day)
        return a if w == 0 else blend(a, self.day_nodes(name, day + 1), w)

    @cached(maxsize=64)
    def episode_nodes(self, name: str, hour: float) -> np.ndarray:
        """A driver that evolves over several days (triangular kernel over daily anchors)."""
        t = hour / 24.0
        days = range(int(np.floor(t - EPISODE_DAYS)) + 1, int(np.ceil(t + EPISODE_DAYS)))
        k = np.array([max(0.0, 1.0 - abs(t - d) / EPISODE_DAYS) for d in days], np.float32)
        k /= np.sqrt((k**2).sum())
        return sum(w * self.day_nodes(name, d) for w, d in zip(k, days))

    def driver_field(self, drivers: TrueDrivers | ForecastDrivers, name: str, hour: int) -> np.ndarray:
        """A driver of the true weather or a run's forecast on the domain at an hour (cached)."""
        return self._driver_field(drivers.key, name, hour)

    @cached(maxsize=64)
    def _driver_field(self, run_day: int | None, name: str, hour: int) -> np.ndarray:
        drivers = self.truth_drivers if run_day is None else self.forecast_drivers(run_day)
        return self.samplers[DAILY_FIELDS[name]].sample(drivers.nodes(name, hour))

    @cached(maxsize=12)
    def at(self, hour: int, phase: int = 0) -> HourWeather:
        """The true weather at an hour (with the clock `phase` hours later)."""
        return HourWeather(self, hour, self.truth_drivers, hour + phase)

    @cached(maxsize=4)
    def forecast_drivers(self, run_day: int) -> ForecastDrivers:
        return ForecastDrivers(self, run_day)

    @cached(maxsize=12)
    def forecast_at(self, run_day: int, lead: int, phase: int = 0) -> HourWeather:
        """The weather of run `run_day` at `lead` hours as the IFS-like forecast gives it (with the clock
        `phase` hours later)."""
        hour = 24 * run_day + lead
        return HourWeather(self, hour, self.forecast_drivers(run_day), hour + phase)

    def wind(self, hour: float, drivers, work: bool) -> tuple[np.ndarray, np.ndarray]:
        """Transport wind (m/s) on the domain, or on the padded work grid (``work=True``)."""
        sampler = self.samplers_work[4.0] if work else self.samplers[4.0]
        lat = self.grid.lat if work else self.lat
        s = season(hour)
        u0 = (2.0 + 1.0 * (1.0 - s)) * np.clip((lat - 35.0) / 10.0, 0.3, 1.0)[:, None]
        u = u0 + 4.0 * sampler.sample(drivers.nodes("u", hour))
        v = 3.0 * sampler.sample(drivers.nodes("v", hour))
        return u.astype(np.float32), v.astype(np.float32)

    # ------------------------------------------------------------------------------ forecast
    @cached(maxsize=32)
    def _error_anchors(self, name: str, run_day: int) -> np.ndarray:
        sampler = self.samplers[DAILY_FIELDS[name]]
        return sampler.draw(rng(self.seed, "fc-error-" + name, run_day), n=96 // LEAD_STEP + 2)

    def forecast_error_nodes(self, name: str, run_day: int, lead: float) -> np.ndarray:
        """Unit-variance error lattice of a driver in run `run_day`, evolving smoothly with lead."""
        position = float(np.clip(lead, 0.0, 96.0 + LEAD_STEP)) / LEAD_STEP
        return blend_stack(self._error_anchors(name, run_day), position)

    def error_field(self, purpose: str, run_day: int, lead: int, *keys: int) -> np.ndarray:
        """Unit-variance smooth error field (2° scale) of a run, evolving smoothly with lead time."""
        anchors = self._noise_anchors(purpose, run_day, *keys)
        return self.noise.sample(blend_stack(anchors, float(np.clip(lead, 0, 96)) / LEAD_STEP))

    @cached(maxsize=48)
    def _noise_anchors(self, purpose: str, run_day: int, *keys: int) -> np.ndarray:
        return self.noise.draw(rng(self.seed, purpose, run_day, *keys), n=96 // LEAD_STEP + 1)

    def forecast(self, variable: str, run_day: int, lead: int) -> np.ndarray:
        """The `meteo` predictor of a run: exactly the forecast weather the members run on."""
        return self.forecast_at(run_day, lead).meteo(variable)

    def truth(self, variable: str, hour: int) -> np.ndarray:
        """The true value of a meteo variable at an hour."""
        return self.at(hour).meteo(variable)
