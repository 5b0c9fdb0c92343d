"""The 11 synthetic CTM members: each runs the chemistry on the forecast weather, with errors of its own.

Per member (drawn once from the seed): a skill scale; a diurnal phase error (whole hours); plumes
displaced along the wind and blurred at its own resolution; its own boundary-layer scheme (a log bias of
the mixing height plus a small perturbation per run); per species a small bias map (urban, coast,
mountain, random terms), emission errors by source that drift over weeks, and biases that depend on the
situation: on the stability of the boundary layer, the temperature and wind anomalies, the season and
the concentration level (peaks under-predicted). Now and then a member changes version (a bias shift on
a date, one change a year). A random error grows with lead and its size varies by place and season.
The error every member shares comes from the weather forecast they all run on, as in CAMS.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cached_property

import numpy as np
from scipy.ndimage import gaussian_filter

from dlens.common.species import MEMBERS, SPECIES_NAMES
from dlens.ingest.synthetic.caching import cached
from dlens.ingest.synthetic.median import median_of_stack
from dlens.ingest.synthetic.seeding import EPOCH, rng, season
from dlens.ingest.synthetic.smooth import SmoothField, blend
from dlens.ingest.synthetic.static import Grid, StaticMaps
from dlens.ingest.synthetic.transport import Displacer
from dlens.ingest.synthetic.truth import Chemistry
from dlens.ingest.synthetic.weather import HourWeather

MISSING_RATE = 0.03
MAX_LOG_BIAS = 0.8  # no member is off by more than a factor of about two by its biases alone
#: Log response of each species to a member's error in boundary-layer height.
MIXING_RESPONSE = {"o3": 0.15, "no2": -0.45, "so2": -0.4, "pm10": -0.3}
#: Typical additive offset (µg/m3) per species.
OFFSET_SCALE = {"o3": 3.0, "no2": 1.0, "so2": 0.1, "pm10": 1.5}
#: What the CTMs share on average (log): the urban, mountain and coastal biases, NO2 and PM10 too low
#: and O3 too high in stable layers, PM10 too low in winter, peaks under-predicted; each member scatters
#: around these.
URBAN_BIAS_MEAN = {"o3": 0.12, "no2": -0.10, "so2": 0.0, "pm10": -0.05}
MOUNTAIN_BIAS_MEAN = {"o3": -0.1, "no2": 0.0, "so2": 0.0, "pm10": 0.05}
#: The models' shared bias in the densely populated regions (PM10's missing secondary aerosol).
REGIONAL_BIAS_MEAN = {"o3": 0.0, "no2": 0.0, "so2": 0.0, "pm10": -0.03}
COAST_BIAS_MEAN = {"o3": 0.06, "no2": 0.0, "so2": 0.0, "pm10": 0.0}
STABILITY_MEAN = {"o3": 0.16, "no2": -0.06, "so2": -0.15, "pm10": -0.14}
SEASON_MEAN = {"o3": 0.0, "no2": 0.0, "so2": 0.0, "pm10": -0.02}
SATURATION_MEAN = {"o3": 0.08, "no2": 0.08, "so2": 0.10, "pm10": 0.05}
#: Mean drift (log, at 96 h) of the forecasts away from the models' analyses as the lead grows.
DRIFT_MEAN = {"o3": 0.06, "no2": -0.05, "so2": 0.05, "pm10": -0.04}
#: Concentration (µg/m3) above which a member's peaks are damped.
PEAK_LEVEL = {"o3": 110.0, "no2": 45.0, "so2": 6.0, "pm10": 40.0}
#: Std of the source-by-source emission error (log) at hot spots, per species (skill 1).
HOTSPOT_STD = {"o3": 0.06, "no2": 0.15, "so2": 0.3, "pm10": 0.15}
#: Std (log) of the error of the emission inventory all members share (CAMS-REG), at its sources; it
#: drifts like a member's own emission error.
INVENTORY_STD = {"o3": 0.0, "no2": 0.2, "so2": 0.3, "pm10": 0.1}
#: Scale of the relative (log) errors per species: regional, secondary O3 is the best forecast in
#: relative terms, primary NO2 and SO2 the worst.
RELATIVE_ERROR = {"o3": 0.9, "no2": 0.85, "so2": 0.7, "pm10": 1.25}
#: Std (log, at skill 1 and relative error 1) of each error term across the members.
MEMBER_SPREAD = {
    "global": 0.05, "urban": 0.12, "coast": 0.12, "mountain": 0.12, "field": 0.07, "stability": 0.1,
    "temperature": 0.06, "wind": 0.06, "season": 0.05, "saturation": 0.05, "drift": 0.08,
}  # fmt: skip
#: How much of its log error sets each member apart from the others, per species: mean and the share less
#: in summer (more in winter); the members' deviations from their mean are scaled by it. Calibrated on the
#: development draws against the median / best member band (docs/synthetic.md, candidate F).
OWN_ERROR = {"o3": (1.0, 0.0), "no2": (0.75, 0.1), "so2": (0.8, 0.1), "pm10": (1.05, 0.0)}
#: A member's random error is larger in winter, smaller in summer, by this share, per species.
NOISE_SEASON = {"o3": 0.0, "no2": 0.1, "so2": 0.0, "pm10": 0.0}
#: A member's random (log) error at lead 0, and how much it grows by 96 h (at skill 1).
NOISE = (0.065, 0.16)
#: The members' random errors differ between winter and summer by up to this share, one way or the other.
SEASON_SKILL = 0.15
DRIFT_DAYS = 40  # emission errors drift between independent states this many days apart
VERSION_SHIFT_STD = 0.14  # log bias shift of a member's new version
#: The members' diurnal phase errors (h), dealt out by the seed: most CTMs are on time, a few an hour or
#: two early or late.
PHASES_H = (-2, -1, -1, 0, 0, 0, 0, 0, 1, 1, 2)
MIXING_BIAS_STD = 0.08  # std (log) of the members' boundary-layer height biases
MIXING_ERROR_STD = 0.08  # std (log) of a member's boundary-layer error in one run
PHASE_STEP = 3  # a diurnal phase error is interpolated between a member's fields this many hours apart
#: Grid rows the members' finishing steps work on at once: the temporaries of a band of 11 members stay in
#: the processor's cache (twice as fast on the full grid as whole fields, bit for bit the same).
ROW_BAND = 32
RAW_CACHE = 3 * 3 * len(MEMBERS)  # raw fields kept: 3 tracers' species × 3 hours (the phase's neighbours)


@dataclass(frozen=True)
class SpeciesBias:
    """Log-space error terms of one member for one species, plus its additive offset (µg/m3)."""

    global_: float
    urban: float
    coast: float
    mountain: float
    field_std: float
    hotspot_std: float  # emission-inventory error at cities / point sources, varying by source and time
    stability: float  # per unit of stability (log of BLH_REF / blh)
    temperature: float  # per unit of the temperature anomaly driver
    wind: float  # per unit of log(wind / 3 m/s)
    season: float  # per unit of season (+1 July, -1 January)
    saturation: float  # damping of values above the peak level
    drift: float  # at 96 h: the forecast's drift away from the model's analysis, growing with lead
    offset: float


@dataclass(frozen=True)
class MemberParams:
    name: str
    skill: float  # scales every error of the member: below 1 is better than typical
    phase_h: int  # the member's diurnal cycle runs this many hours late
    displacement_h: float  # plumes carried this many hours too far along the wind
    blur_cells: float  # Gaussian smoothing of plumes (its coarser effective resolution)
    mixing_bias: float  # log bias of its boundary-layer height
    noise: float  # std of its random log error at lead 0 ...
    noise_growth: float  # ... plus this much at lead 96 h
    season_skill: float  # its random error is larger by this share in winter (negative: in summer)
    bias: dict[str, SpeciesBias]

    def noise_std(self, lead: int) -> float:
        return self.noise + self.noise_growth * lead / 96.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["bias"] = {sp: {k.rstrip("_"): float(v) for k, v in b.items()} for sp, b in out["bias"].items()}
        return out


def draw_members(seed: int) -> list[MemberParams]:
    """The members' error parameters, deterministic from the seed; skills spread 0.7..1.4.

    Every scalar error is centred on its median over the members plus the shared tendency of the CTMs
    (:data:`URBAN_BIAS_MEAN`, :data:`STABILITY_MEAN`, …), so what the members share is explicit and
    documented, never the luck of the draw.
    """
    n, n_sp = len(MEMBERS), len(SPECIES_NAMES)
    skills = rng(seed, "member-skill").permutation(np.linspace(0.7, 1.4, n))
    g = rng(seed, "member-errors")
    rel = np.array([RELATIVE_ERROR[sp] for sp in SPECIES_NAMES])

    def centred(std: float, mean: dict | float = 0.0, per_species: bool = True) -> np.ndarray:
        shape = (n, n_sp) if per_species else (n,)
        scale = skills[:, None] * rel if per_species else skills
        draw = g.normal(0.0, 1.0, shape)
        draw /= draw.std(axis=0)  # the members differ by exactly `std`: the luck of a draw is not a setting
        x = std * draw * scale
        centre = np.array([mean[sp] for sp in SPECIES_NAMES]) if isinstance(mean, dict) else mean
        return x - np.median(x, axis=0) + centre

    spread = MEMBER_SPREAD
    global_ = centred(spread["global"])
    urban = centred(spread["urban"], URBAN_BIAS_MEAN)
    coast, mountain = (
        centred(spread["coast"], COAST_BIAS_MEAN),
        centred(spread["mountain"], MOUNTAIN_BIAS_MEAN),
    )
    stability = centred(spread["stability"], STABILITY_MEAN)
    temperature, wind = centred(spread["temperature"]), centred(spread["wind"])
    season_ = centred(spread["season"], SEASON_MEAN)
    saturation = np.clip(centred(spread["saturation"], SATURATION_MEAN), 0.0, 0.3)
    drift = centred(spread["drift"], DRIFT_MEAN)
    offset = centred(1.0) / rel * np.array([OFFSET_SCALE[sp] for sp in SPECIES_NAMES])
    phase = g.permutation(PHASES_H)
    displacement = g.permutation(np.linspace(-2.0, 2.0, n))
    mixing = centred(MIXING_BIAS_STD, per_species=False)
    blur = 0.3 + 0.8 * np.sqrt(skills) * g.uniform(0.0, 1.0, n)
    season_skill = g.permutation(np.linspace(-SEASON_SKILL, SEASON_SKILL, n))
    out = []
    for m, (name, skill) in enumerate(zip(MEMBERS, skills)):
        bias = {
            sp: SpeciesBias(
                global_=float(global_[m, s]), urban=float(urban[m, s]), coast=float(coast[m, s]),
                mountain=float(mountain[m, s]), field_std=float(spread["field"] * skill * rel[s]),
                hotspot_std=float(HOTSPOT_STD[sp] * skill), stability=float(stability[m, s]),
                temperature=float(temperature[m, s]), wind=float(wind[m, s]), season=float(season_[m, s]),
                saturation=float(saturation[m, s]), drift=float(drift[m, s]), offset=float(offset[m, s]),
            )
            for s, sp in enumerate(SPECIES_NAMES)
        }  # fmt: skip
        out.append(
            MemberParams(
                name=name, skill=round(float(skill), 3), phase_h=int(phase[m]),
                displacement_h=round(float(displacement[m]), 3), blur_cells=round(float(blur[m]), 3),
                mixing_bias=round(float(mixing[m]), 4), noise=round(NOISE[0] * float(skill), 4),
                noise_growth=round(NOISE[1] * float(skill), 4), season_skill=round(float(season_skill[m]), 3),
                bias=bias,
            )
        )  # fmt: skip
    return out


def member_median(fields: np.ndarray) -> np.ndarray:
    """Median over the first axis of the rows present (finite), the mean of the two middle values for an
    even count; NaN where none is (a sorting network: many times faster than ``np.median`` on 11 rows)."""
    finite = np.isfinite(fields.reshape(len(fields), -1)[:, 0])
    present = fields if finite.all() else fields[finite]
    if len(present) == 0:
        return np.full(fields.shape[1:], np.nan, np.float32)
    return median_of_stack(present)


def version_changes(seed: int, year: int) -> tuple[int, datetime]:
    """The one version change of `year`: which member, from which 00 UTC run on."""
    g = rng(seed, "member-version", year)
    member = int(g.integers(len(MEMBERS)))
    return member, datetime(year, 1, 1) + timedelta(days=int(g.integers(20, 340)))


@dataclass(frozen=True)
class Situation:
    """The weather a member's situation-dependent biases respond to, at one valid hour: stability,
    temperature anomaly and log(wind / 3 m/s), stacked (3, lat, lon), and the season."""

    stack: np.ndarray
    season: float

    @classmethod
    def of(cls, hw: HourWeather) -> Situation:
        stack = np.stack([hw.stability, hw.temperature_anomaly, np.log(hw.wind_speed / np.float32(3.0))])
        return cls(stack.astype(np.float32), hw.s)


def _finish_band(
    species: str,
    bias: np.ndarray,
    raw: np.ndarray,
    log_f: np.ndarray,
    extra: np.ndarray | float,
    saturation: np.ndarray,
    offset: np.ndarray,
    scale: np.float32,
    out: np.ndarray,
) -> None:
    """`Ensemble._finish` on a band of rows into `out`, from the band's log biases of the day (`bias`, read
    only) and its situation-dependent ones (`log_f`, worked on in place)."""
    log_f += bias
    np.clip(log_f, -MAX_LOG_BIAS, MAX_LOG_BIAS, out=log_f)
    log_f += extra
    damping = np.divide(raw, np.float32(PEAK_LEVEL[species]))  # peaks damped: log(1 + raw / level)
    damping += np.float32(1.0)
    np.log(damping, out=damping)  # numpy's float32 log is vectorised, its log1p five times slower
    damping *= saturation
    log_f -= damping
    if len(log_f) > 1 and scale != 1.0:  # what sets each member apart, larger or smaller by season
        shared = log_f.mean(axis=0)
        log_f -= shared
        log_f *= scale
        log_f += shared
    np.exp(log_f, out=log_f)
    log_f *= raw  # now the value
    np.add(log_f, offset, out=out)
    log_f *= np.float32(0.2)
    np.maximum(out, log_f, out=out)


class Ensemble:
    """Member fields of a domain: forecasts on each run's forecast weather, analysis states on the truth's."""

    def __init__(self, seed: int, chem: Chemistry, static: StaticMaps, grid: Grid):
        self.seed, self.chem, self.static, self.grid = seed, chem, static, grid
        self.params = draw_members(seed)
        lat, lon = chem.lat, chem.weather.lon
        self.bias_sampler = SmoothField(lat, lon, 1.5)
        self.hotspot_sampler = SmoothField(lat, lon, 0.4)
        self.skill_sampler = SmoothField(lat, lon, 3.0)
        self._raw: OrderedDict[tuple, np.ndarray] = OrderedDict()  # the members' recent raw fields

    # ----------------------------------------------------------------------------- what varies
    def missing(self, run_day: int) -> np.ndarray:
        """Which members are missing from a run (the same for every species)."""
        return rng(self.seed, "missing", run_day).random(len(MEMBERS)) < MISSING_RATE

    @cached(maxsize=4 * len(MEMBERS))
    def version(self, m: int, run_day: int) -> int:
        """How many version changes member `m` has had by run `run_day` (since 2000)."""
        run = EPOCH + timedelta(days=run_day)
        changes = (version_changes(self.seed, year) for year in range(EPOCH.year, run.year + 1))
        return sum(1 for member, start in changes if member == m and start <= run)

    @cached(maxsize=64)
    def version_shift(self, m: int, version: int) -> np.ndarray:
        """Log bias shift per species of a member's version (0 for the first)."""
        if version == 0:
            return np.zeros(len(SPECIES_NAMES))
        rel = np.array([RELATIVE_ERROR[sp] for sp in SPECIES_NAMES])
        return (
            rng(self.seed, "version-shift", m, version).normal(0.0, VERSION_SHIFT_STD, len(SPECIES_NAMES))
            * rel
        )

    @cached(maxsize=len(MEMBERS) * len(SPECIES_NAMES))
    def static_log_bias(self, m: int, species: str) -> np.ndarray:
        """The part of a member's bias that is a map: geography and a smooth random field."""
        b, st = self.params[m].bias[species], self.static
        g = rng(self.seed, "member-bias", m, SPECIES_NAMES.index(species))
        noise = self.bias_sampler.sample(self.bias_sampler.draw(g))
        return (
            b.global_ + b.urban * st.urban_index + b.coast * st.coast_index + b.mountain * st.mountain_index
            + REGIONAL_BIAS_MEAN[species] * st.regional_index + b.field_std * noise
        ).astype(np.float32)  # fmt: skip

    @cached(maxsize=2 * (len(MEMBERS) + 1) * len(SPECIES_NAMES))
    def _source_state(self, purpose: str, *keys: int) -> np.ndarray:
        """One independent state of an emission error (a smooth field), from its random stream."""
        return self.hotspot_sampler.sample(self.hotspot_sampler.draw(rng(self.seed, purpose, *keys)))

    def _drifting_source_error(
        self, std: float, species: str, day: int, purpose: str, *keys: int
    ) -> np.ndarray:
        """An emission error at the species' sources on a day: states DRIFT_DAYS apart, blended."""
        k, w = divmod(day, DRIFT_DAYS)
        state = blend(
            self._source_state(purpose, *keys, k), self._source_state(purpose, *keys, k + 1), w / DRIFT_DAYS
        )
        sources = self.static.industry_index if species == "so2" else self.static.urban_index
        return (std * sources * state).astype(np.float32)

    @cached(maxsize=2 * len(MEMBERS) * len(SPECIES_NAMES))
    def emission_error(self, m: int, species: str, day: int) -> np.ndarray:
        """A member's own emission error at its sources on a day (drifting)."""
        std = self.params[m].bias[species].hotspot_std
        return self._drifting_source_error(
            std, species, day, "member-hotspot", m, SPECIES_NAMES.index(species)
        )

    @cached(maxsize=2 * len(SPECIES_NAMES))
    def inventory_error(self, species: str, day: int) -> np.ndarray:
        """The error of the emission inventory every member uses, at its sources on a day (drifting)."""
        k = SPECIES_NAMES.index(species)
        return self._drifting_source_error(INVENTORY_STD[species], species, day, "inventory-error", k)

    @cached(maxsize=len(MEMBERS))
    def mixing_error(self, m: int, run_day: int) -> np.ndarray:
        """A member's boundary-layer error (log) in one run beyond its systematic bias: a smooth field."""
        field = self.skill_sampler.sample(
            self.skill_sampler.draw(rng(self.seed, "member-mixing", m, run_day))
        )
        return (MIXING_ERROR_STD * field).astype(np.float32)

    def forecast_log_heights(self, run_day: int, lead: int) -> np.ndarray:
        """(member, lat, lon) float32: the log boundary-layer height each member runs on at a lead: run
        `run_day`'s forecast one with the member's own scheme (its bias, `mixing_bias`, and its error in that
        run, `mixing_error`: what `MIXING_RESPONSE` turns into its surface error). Sets its profile aloft."""
        log_blh = self.chem.forecast_hour(run_day, lead).hw.log_blh
        out = np.empty((len(MEMBERS), *log_blh.shape), np.float32)
        for m, p in enumerate(self.params):
            np.add(log_blh, np.float32(p.mixing_bias), out=out[m])
            out[m] += self.mixing_error(m, run_day)
        return out

    @cached(maxsize=len(SPECIES_NAMES))
    def background_scale(self, species: str) -> np.ndarray:
        """(member, 1, 1) float32: each member's free-troposphere background of a species relative to the
        forecast weather's, exp(its global log bias): what sets the members apart above the boundary layer."""
        return np.exp(np.array([p.bias[species].global_ for p in self.params], np.float32))[:, None, None]

    def state_log_heights(self, hour: int) -> np.ndarray:
        """(member, lat, lon) float32: the log boundary-layer height of each member's analysis state at an
        hour: the true (analysed) one with the member's own bias."""
        log_blh = self.chem.hour(hour).hw.log_blh
        bias = np.array([p.mixing_bias for p in self.params], np.float32)[:, None, None]
        return np.add(log_blh, bias, dtype=np.float32)

    @cached(maxsize=len(MEMBERS))
    def noise(self, m: int, run_day: int, lead: int) -> np.ndarray:
        """A member's random error at a lead (unit variance where its skill is average; every species'
        error follows it, each with its own size)."""
        return self.skill_map(m) * self.chem.weather.error_field("member-noise", run_day, lead, m)

    @cached(maxsize=len(MEMBERS))
    def skill_map(self, m: int) -> np.ndarray:
        """Where member `m` is better or worse than its average (a factor on its random error, mean ~1)."""
        field = self.skill_sampler.sample(self.skill_sampler.draw(rng(self.seed, "member-skill-map", m)))
        return np.exp(0.3 * field - 0.045).astype(np.float32)

    # ------------------------------------------------------------------------------- plumes
    @cached_property
    def _displacements(self) -> list[tuple[int, float]]:
        """Per member: the whole hour below its displacement and the weight of the hour above."""
        out = []
        for p in self.params:
            low = int(np.floor(p.displacement_h))
            out.append((low, float(p.displacement_h - low)))
        return out

    def _member_plumes(self, plume: np.ndarray, move: Displacer) -> list[np.ndarray]:
        """Each member's version of a plume anchor: displaced along the wind, blurred, cropped."""
        moved: dict[int, np.ndarray] = {}

        def at(hours: int) -> np.ndarray:
            if hours not in moved:
                moved[hours] = move(plume, hours)
            return moved[hours]

        out = []
        for p, (low, w) in zip(self.params, self._displacements):
            f = at(low) if w == 0 else (1.0 - np.float32(w)) * at(low) + np.float32(w) * at(low + 1)
            out.append(self.grid.crop(gaussian_filter(f, p.blur_cells, mode="nearest")))
        return out

    @cached(maxsize=12)  # 3 tracers × the 2-3 days an hour's members blend
    def forecast_plumes(self, tracer: str, run_day: int, day: int) -> list[np.ndarray]:
        """The members' plume anchors of `day` in run `run_day` (its forecast wind)."""
        return self._member_plumes(self.chem.plume_work(tracer, day, run_day), self.chem.mover(run_day, day))

    # ------------------------------------------------------------------------------- fields
    @cached(maxsize=2 * len(SPECIES_NAMES))
    def _day_log_bias(self, species: str, day: int) -> np.ndarray:
        """(member, lat, lon): every part of the members' log biases that holds for a day: the maps, the
        drifting emission errors (their own and the shared inventory's), the season, the boundary-layer
        bias and the version of the day."""
        k, s = SPECIES_NAMES.index(species), season(24 * day + 12)
        out = np.empty((len(MEMBERS), *self.chem.land.shape), np.float32)
        shared = self.inventory_error(species, day)
        for m, p in enumerate(self.params):
            b = p.bias[species]
            scalar = (
                b.season * s + MIXING_RESPONSE[species] * p.mixing_bias
                + self.version_shift(m, self.version(m, day))[k]
            )  # fmt: skip
            np.add(self.static_log_bias(m, species), self.emission_error(m, species, day), out=out[m])
            out[m] += shared
            out[m] += np.float32(scalar)
        return out

    @cached(maxsize=len(SPECIES_NAMES))
    def _coefficients(self, species: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per member: (stability, temperature, wind) responses, saturation, offset."""
        biases = [p.bias[species] for p in self.params]
        response = np.array([[b.stability, b.temperature, b.wind] for b in biases], np.float32)
        return (
            response,
            np.array([b.saturation for b in biases], np.float32),
            np.array([b.offset for b in biases], np.float32),
        )

    def _finish(
        self,
        species: str,
        day: int,
        raw: np.ndarray,
        rows: np.ndarray,
        situation: Situation,
        extra: np.ndarray | float,
    ) -> np.ndarray:
        """The members' fields from their raw chemistry (the `rows` present): biases for the situation,
        saturation of the peaks, offset; (member, lat, lon) with NaN rows for the members missing. Worked
        through in bands of grid rows (every step is per cell)."""
        response, saturation, offset = self._coefficients(species)
        bias = self._day_log_bias(species, day)
        scale = np.float32(OWN_ERROR[species][0] - OWN_ERROR[species][1] * situation.season)
        out = np.empty((len(MEMBERS), *raw.shape[1:]), np.float32)
        out[np.setdiff1d(np.arange(len(MEMBERS)), rows)] = np.nan
        response, saturation, offset = response[rows], saturation[rows, None, None], offset[rows, None, None]
        every = len(rows) == len(MEMBERS)
        present = slice(None) if every else rows  # a slice gives views, fancy indexing copies
        for start in range(0, raw.shape[1], ROW_BAND):
            band = slice(start, start + ROW_BAND)
            band_raw = raw[:, band]
            dest = out[:, band] if every else np.empty(band_raw.shape, np.float32)
            _finish_band(
                species,
                bias[present, band],
                band_raw,
                (response @ situation.stack[:, band].reshape(3, -1)).reshape(band_raw.shape),
                extra if np.isscalar(extra) else extra[:, band],
                saturation,
                offset,
                scale,
                dest,
            )
            if not every:
                out[rows, band] = dest
        return out

    def _model(self, species: str, hour: int, m: int | None, run_day: int | None) -> np.ndarray:
        """Raw chemistry at `hour`: member `m`'s on run `run_day`'s forecast weather with its own plumes, or
        (`m` and `run_day` None) the true weather and transport a member's analysis state starts from; the
        NO2 is kept for the O3 (they come from one NOx)."""
        kind = "no2" if species == "o3" else species
        key = (kind, hour, m, run_day)
        if run_day is None:
            chemistry = self.chem.hour(hour)
        else:
            chemistry = self.chem.forecast_hour(run_day, hour - 24 * run_day)
        raw = self._raw.get(key)
        if raw is None:
            if run_day is None:
                raw = self.chem.evaluate(kind, chemistry, hour, self.chem.truth_plume)
            else:
                raw = self.chem.evaluate(
                    kind, chemistry, hour, lambda tracer, day: self.forecast_plumes(tracer, run_day, day)[m]
                )
            raw.flags.writeable = False  # shared: the truth of the generator is one of these
            self._raw[key] = raw
            if len(self._raw) > RAW_CACHE:
                self._raw.popitem(last=False)
        return self.chem.ozone(chemistry, raw) if species == "o3" else raw

    def _phased(self, species: str, hour: int, m: int, run_day: int | None) -> np.ndarray:
        """Member `m`'s raw field (its analysis state's with `run_day` None) with its diurnal cycle
        `phase_h` hours late: interpolated in time between fields PHASE_STEP hours apart."""
        source = None if run_day is None else m
        base = self._model(species, hour, source, run_day)
        phase = self.params[m].phase_h
        neighbour = hour - PHASE_STEP * int(np.sign(phase))
        if run_day is not None:  # a forecast's fields exist within its leads only
            neighbour = int(np.clip(neighbour, 24 * run_day, 24 * run_day + 96))
        if phase == 0 or neighbour == hour:
            return base
        other = self._model(species, neighbour, source, run_day)
        return base + np.float32(abs(phase) / PHASE_STEP) * (other - base)

    def analysed(self, species: str, hour: int) -> np.ndarray:
        """The chemistry on the true weather and transport at an hour: the truth, where every member's
        analysis state starts from."""
        return self._model(species, hour, None, None)

    def fields(self, species: str, run_day: int, lead: int) -> np.ndarray:
        """(member, lat, lon) float32 forecasts of run `run_day` at `lead`; NaN rows for missing members."""
        hour = run_day * 24 + lead
        rows = np.flatnonzero(~self.missing(run_day))
        weather = self.chem.weather
        situation = Situation.of(weather.forecast_at(run_day, lead))
        raw = np.empty((len(rows), *weather.land.shape), np.float32)
        extra = np.empty_like(raw)
        for k, m in enumerate(rows):
            p = self.params[m]
            raw[k] = self._phased(species, hour, m, run_day)
            season_factor = 1.0 - (p.season_skill + NOISE_SEASON[species]) * situation.season
            noise_std = p.noise_std(lead) * RELATIVE_ERROR[species] * season_factor
            np.multiply(np.float32(noise_std), self.noise(m, run_day, lead), out=extra[k])
            extra[k] += np.float32(MIXING_RESPONSE[species]) * self.mixing_error(m, run_day)
            extra[k] += np.float32(p.bias[species].drift * lead / 96.0)
        return self._finish(species, run_day, raw, rows, situation, extra)

    def states(self, species: str, hour: int) -> np.ndarray:
        """(member, lat, lon) float32: each member's own analysis state at an hour, before it is pulled
        towards the observations. The analysis cycle gives every model the analysed weather and transport
        (the truth's); what stays is its chemistry: its bias maps, situation-dependent biases, damped peaks,
        diurnal phase error and version of the day. NaN rows for the members missing from that day's run."""
        day = hour // 24
        rows = np.flatnonzero(~self.missing(day))
        situation = Situation.of(self.chem.weather.at(hour))
        raw = np.stack([self._phased(species, hour, m, None) for m in rows])
        return self._finish(species, day, raw, rows, situation, 0.0)
