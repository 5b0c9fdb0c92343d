"""The hidden true weather (wind, boundary layer, sun, clouds, temperature, episode drivers) and
the IFS-like forecast of it, whose error grows with lead time.

Each day has its own random smooth fields anchored at 00 UTC; any hour blends the two anchors
around it (multi-day drivers blend several), so a day is computable alone and continuous.
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
EPISODE_DAYS = 3.0  # half-width of the multi-day kernel of PM episodes and dust
LEAD_STEP = 12  # hours between the anchors of forecast-error fields
BLH_REF = 500.0


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


class HourWeather:
    """True weather at one hour on the domain; fields are computed on first use."""

    def __init__(self, weather: Weather, hour: int):
        self.w, self.hour = weakref.proxy(weather), hour
        self.hod = hour % 24
        self.doy = day_of_year(hour)
        self.s = season(hour)
        self.local_hour = ((self.hod + weather.lon / 15.0) % 24.0).astype(np.float32)

    def _cosz(self, lag_h: float) -> np.ndarray:
        decl = np.radians(23.44) * np.sin(2.0 * np.pi * (self.doy - 81.0) / 365.25)
        phi = np.radians(self.w.lat)[:, None]
        omega = np.radians(15.0 * (self.local_hour - lag_h - 12.0))[None, :]
        return (np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(omega)).astype(np.float32)

    def _daily(self, name: str) -> np.ndarray:
        return self.w.daily(name, self.hour)

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
        return self._daily("cloud")

    @cached_property
    def cloud(self) -> np.ndarray:
        return cloud_transmission(self.cloud_z)

    @cached_property
    def wind(self) -> tuple[np.ndarray, np.ndarray]:
        """Transport wind (m/s, east and north) at the top of the surface layer."""
        return self.w.wind(self.hour, work=False)

    @cached_property
    def wind10(self) -> tuple[np.ndarray, np.ndarray]:
        """10 m wind: the transport wind slowed down over land."""
        u, v = self.wind
        f = 1.0 - 0.3 * self.w.land
        return u * f, v * f

    @cached_property
    def log_blh(self) -> np.ndarray:
        land = self.w.land
        lb_land = np.log(blh_land(self.local_hour, self.s)).astype(np.float32)[None, :]
        lb_sea = np.float32(np.log(550.0 - 100.0 * self.s))
        return land * lb_land + (1.0 - land) * lb_sea + 0.35 * self._daily("blh")

    @cached_property
    def ssrd(self) -> np.ndarray:
        """Surface solar radiation downwards (W m-2)."""
        return 1050.0 * np.clip(self.cosz, 0.0, None) ** 1.2 * self.cloud

    @cached_property
    def t2m(self) -> np.ndarray:
        """2 m temperature (K)."""
        w, s = self.w, self.s
        diurnal = np.cos(2.0 * np.pi * (self.local_hour - 15.0) / 24.0)[None, :]
        return (
            288.0 - 0.6 * (w.lat[:, None] - 45.0) + s * (7.0 + 5.0 * w.land) - 0.0065 * w.orography
            + w.land * (3.0 + 1.5 * s) * diurnal + 3.0 * self._daily("t")
        ).astype(np.float32)  # fmt: skip

    @cached_property
    def rho(self) -> np.ndarray:
        """Regional ozone anomaly driver (unit variance), warmer weather -> more ozone."""
        return 0.6 * self._daily("t") + 0.8 * self._daily("rho")

    @cached_property
    def psi(self) -> np.ndarray:
        """Multi-day PM episode driver (unit variance)."""
        return self.w.episode("psi", self.hour)

    @cached_property
    def dust(self) -> np.ndarray:
        """Multi-day Saharan dust driver (unit variance)."""
        return self.w.episode("dust", self.hour)


class Weather:
    """True weather of a domain and its forecasts, deterministic from (seed, date)."""

    def __init__(self, seed: int, grid: Grid, static: StaticMaps):
        self.seed, self.grid = seed, grid
        self.lat = grid.lat[grid.inner[0]].astype(np.float32)
        self.lon = grid.lon[grid.inner[1]].astype(np.float32)
        self.land = grid.crop(static.land)
        self.orography = grid.crop(static.orography)
        self.samplers = {sp: SmoothField(self.lat, self.lon, sp) for sp in set(DAILY_FIELDS.values())}
        self.samplers_work = {4.0: SmoothField(grid.lat, grid.lon, 4.0)}
        self.noise = SmoothField(self.lat, self.lon, 2.0)

    # ---------------------------------------------------------------------------- true weather
    @cached(maxsize=256)
    def day_nodes(self, name: str, day: int) -> np.ndarray:
        sampler = self.samplers[DAILY_FIELDS[name]]
        return sampler.draw(rng(self.seed, "weather-" + name, day))

    @cached(maxsize=12)
    def at(self, hour: int) -> HourWeather:
        return HourWeather(self, hour)

    def nodes(self, name: str, hour: float) -> np.ndarray:
        """Lattice values of a daily field at an hour (blend of the two 00 UTC anchors)."""
        day = int(hour // 24)
        w = (hour - 24 * day) / 24.0
        a = self.day_nodes(name, day)
        return a if w == 0 else blend(a, self.day_nodes(name, day + 1), w)

    def daily(self, name: str, hour: float) -> np.ndarray:
        return self.samplers[DAILY_FIELDS[name]].sample(self.nodes(name, hour))

    def episode(self, name: str, hour: float) -> np.ndarray:
        """A driver that evolves over several days (triangular kernel over daily anchors)."""
        t = hour / 24.0
        days = range(int(np.floor(t - EPISODE_DAYS)) + 1, int(np.ceil(t + EPISODE_DAYS)))
        k = np.array([max(0.0, 1.0 - abs(t - d) / EPISODE_DAYS) for d in days], np.float32)
        k /= np.sqrt((k**2).sum())
        nodes = sum(w * self.day_nodes(name, d) for w, d in zip(k, days))
        return self.samplers[DAILY_FIELDS[name]].sample(nodes)

    def wind(self, hour: float, work: bool) -> tuple[np.ndarray, np.ndarray]:
        """Transport wind (m/s) on the domain, or on the padded work grid (``work=True``)."""
        sampler = self.samplers_work[4.0] if work else self.samplers[4.0]
        lat = self.grid.lat if work else self.lat
        s = season(hour)
        u0 = (2.0 + 1.0 * (1.0 - s)) * np.clip((lat - 35.0) / 10.0, 0.3, 1.0)[:, None]
        u = u0 + 4.0 * sampler.sample(self.nodes("u", hour))
        v = 3.0 * sampler.sample(self.nodes("v", hour))
        return u.astype(np.float32), v.astype(np.float32)

    # -------------------------------------------------------------------------------- forecast
    @cached(maxsize=16)
    def error_nodes(self, purpose: str, run_day: int, *keys: int) -> np.ndarray:
        """Lattice values of an error field at the lead anchors 0, 12, ..., 96 h of a run."""
        return self.noise.draw(rng(self.seed, purpose, run_day, *keys), n=96 // LEAD_STEP + 1)

    def error_field(self, purpose: str, run_day: int, lead: int, *keys: int) -> np.ndarray:
        """Unit-variance smooth error field of a run, evolving smoothly with lead time."""
        return self.noise.sample(blend_stack(self.error_nodes(purpose, run_day, *keys), lead / LEAD_STEP))

    @staticmethod
    def common_amplitude(lead: int) -> float:
        """Std of the log concentration error all members share (the weather forecast error)."""
        return 0.03 + 0.17 * lead / 96.0

    def common_error(self, run_day: int, lead: int) -> np.ndarray:
        """Shared forecast error driver of a run (times its amplitude): positive = too stable."""
        return self.common_amplitude(lead) * self.error_field("common", run_day, lead)

    def forecast(self, variable: str, run_day: int, lead: int) -> np.ndarray:
        """IFS-like forecast of a meteo variable for ``run_day`` + ``lead`` hours."""
        hw = self.at(run_day * 24 + lead)
        a = lead / 96.0
        if variable == "t2m":
            out = hw.t2m + (0.4 + 1.6 * a) * self.error_field("fc-t2m", run_day, lead)
        elif variable == "blh":
            err = -self.common_error(run_day, lead) / 0.8 + (0.1 + 0.2 * a) * self.error_field(
                "fc-blh", run_day, lead
            )
            out = np.exp(hw.log_blh + err)
        elif variable in ("u10", "v10"):
            comp = hw.wind10[0 if variable == "u10" else 1]
            out = comp + (0.5 + 2.0 * a) * self.error_field("fc-" + variable, run_day, lead)
        elif variable == "ssrd":
            z = hw.cloud_z + (0.3 + 0.9 * a) * self.error_field("fc-cloud", run_day, lead)
            out = 1050.0 * np.clip(hw.cosz, 0.0, None) ** 1.2 * cloud_transmission(z)
        else:
            raise ValueError(f"unknown meteo variable {variable!r}")
        return np.asarray(out, np.float32)

    def truth(self, variable: str, hour: int) -> np.ndarray:
        """The true value of a meteo variable at an hour."""
        hw = self.at(hour)
        out = {
            "t2m": lambda: hw.t2m, "blh": lambda: np.exp(hw.log_blh), "u10": lambda: hw.wind10[0],
            "v10": lambda: hw.wind10[1], "ssrd": lambda: hw.ssrd,
        }  # fmt: skip
        if variable not in out:
            raise ValueError(f"unknown meteo variable {variable!r}")
        return np.asarray(out[variable](), np.float32)
