"""The 11 synthetic CTM members: each sees the truth through its own systematic errors.

Per member (drawn once from the seed): a skill scale, a diurnal phase error (whole hours), a
displacement of plumes along the wind, a blur at its own resolution, and per species a smooth
multiplicative bias map (global, urban, coastal and mountain terms plus a random field) and an
additive offset. Per run and lead: a random smooth error growing with lead, and the error common
to all members (the shared weather forecast), which no combination of members can remove.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from dlens.common.species import MEMBERS, SPECIES_NAMES
from dlens.ingest.synthetic.caching import cached
from dlens.ingest.synthetic.seeding import rng
from dlens.ingest.synthetic.smooth import SmoothField
from dlens.ingest.synthetic.static import Grid, StaticMaps
from dlens.ingest.synthetic.transport import shift
from dlens.ingest.synthetic.truth import Chemistry

MISSING_RATE = 0.03
MAX_LOG_BIAS = 0.7  # no member is off by more than a factor of two by bias alone
#: How strongly the shared weather error (too stable / too shallow a boundary layer) acts.
COMMON_WEIGHT = {"o3": -0.6, "no2": 1.0, "so2": 0.7, "pm10": 0.9}
#: Typical additive offset (µg/m3) and mean urban log-bias of the CTMs, per species.
OFFSET_SCALE = {"o3": 3.0, "no2": 1.5, "so2": 0.3, "pm10": 2.0}
URBAN_BIAS_MEAN = {"o3": 0.08, "no2": -0.12, "so2": 0.0, "pm10": -0.1}
#: Std of the source-by-source emission error (log) at hot spots, per species (skill 1).
HOTSPOT_STD = {"o3": 0.1, "no2": 0.3, "so2": 0.5, "pm10": 0.3}
#: Scale of the relative (log) errors per species: regional, secondary O3 is the best
#: forecast in relative terms, primary NO2 and SO2 the worst.
RELATIVE_ERROR = {"o3": 0.5, "no2": 1.0, "so2": 1.2, "pm10": 0.8}


@dataclass(frozen=True)
class SpeciesBias:
    """Log-space bias terms of one member for one species, plus its additive offset (µg/m3)."""

    global_: float
    urban: float
    coast: float
    mountain: float
    field_std: float
    hotspot_std: float  # emission-inventory error at cities / point sources, varying by source
    offset: float


@dataclass(frozen=True)
class MemberParams:
    name: str
    skill: float  # scales every error of the member: below 1 is better than typical
    phase_h: int  # the member's diurnal cycle runs this many hours late
    displacement_h: float  # plumes carried this many hours too far along the wind
    blur_cells: float  # Gaussian smoothing of plumes (its coarser effective resolution)
    noise: float  # std of its random log error at lead 0 ...
    noise_growth: float  # ... plus this much at lead 96 h
    bias: dict[str, SpeciesBias]

    def noise_std(self, lead: int) -> float:
        return self.noise + self.noise_growth * lead / 96.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["bias"] = {sp: {k.rstrip("_"): float(v) for k, v in b.items()} for sp, b in out["bias"].items()}
        return out


def draw_members(seed: int) -> list[MemberParams]:
    """The members' error parameters, deterministic from the seed; skills spread 0.7..1.4.

    Every scalar error (biases, offset, phase, displacement) is centred on its median over the
    members, so what the members share is the explicit, documented part (:data:`URBAN_BIAS_MEAN`,
    the blur every member applies, the common weather error), never the luck of the draw.
    """
    n, n_sp = len(MEMBERS), len(SPECIES_NAMES)
    skills = rng(seed, "member-skill").permutation(np.linspace(0.7, 1.4, n))
    g = rng(seed, "member-errors")

    rel = np.array([RELATIVE_ERROR[sp] for sp in SPECIES_NAMES])

    def centred(std: float, mean: np.ndarray | float = 0.0, per_species: bool = True) -> np.ndarray:
        shape = (n, n_sp) if per_species else (n,)
        scale = skills[:, None] * rel if per_species else skills
        x = g.normal(0.0, std, shape) * scale
        return x - np.median(x, axis=0) + mean

    global_ = centred(0.1)
    urban = centred(0.2, np.array([URBAN_BIAS_MEAN[sp] for sp in SPECIES_NAMES]))
    coast, mountain = centred(0.15), centred(0.15)
    offset = centred(1.0) / rel * np.array([OFFSET_SCALE[sp] for sp in SPECIES_NAMES])
    phase = np.clip(np.round(centred(1.0, per_species=False)), -2, 2).astype(int)
    displacement = centred(1.5, per_species=False)
    blur = 0.3 + 0.8 * np.sqrt(skills) * g.uniform(0.0, 1.0, n)
    out = []
    for m, (name, skill) in enumerate(zip(MEMBERS, skills)):
        bias = {
            sp: SpeciesBias(
                global_=float(global_[m, s]), urban=float(urban[m, s]), coast=float(coast[m, s]),
                mountain=float(mountain[m, s]), field_std=float(0.12 * skill * rel[s]),
                hotspot_std=float(HOTSPOT_STD[sp] * skill), offset=float(offset[m, s]),
            )
            for s, sp in enumerate(SPECIES_NAMES)
        }  # fmt: skip
        out.append(
            MemberParams(
                name=name, skill=round(float(skill), 3), phase_h=int(phase[m]),
                displacement_h=round(float(displacement[m]), 3), blur_cells=round(float(blur[m]), 3),
                noise=round(0.08 * float(skill), 4), noise_growth=round(0.35 * float(skill), 4), bias=bias,
            )
        )  # fmt: skip
    return out


class Ensemble:
    """Member fields of a domain, with per-day member plume anchors and bias maps cached."""

    def __init__(self, seed: int, chem: Chemistry, static: StaticMaps, grid: Grid):
        self.seed, self.chem, self.static, self.grid = seed, chem, static, grid
        self.params = draw_members(seed)
        self.bias_sampler = SmoothField(chem.lat, chem.weather.lon, 1.5)
        self.hotspot_sampler = SmoothField(chem.lat, chem.weather.lon, 0.4)

    def missing(self, run_day: int) -> np.ndarray:
        """Which members are missing from a run (the same for every species)."""
        return rng(self.seed, "missing", run_day).random(len(MEMBERS)) < MISSING_RATE

    @cached(maxsize=4)
    def member_plumes(self, tracer: str, day: int) -> list[np.ndarray]:
        """Each member's version of a tracer's plume anchor: displaced along the wind, blurred."""
        truth = self.chem.plume_work(tracer, day)
        cx, cy = self.chem.wind_cells(day)
        out = []
        for p in self.params:
            f = shift(truth, p.displacement_h * cx, p.displacement_h * cy)
            out.append(self.grid.crop(gaussian_filter(f, p.blur_cells, mode="nearest")))
        return out

    @cached(maxsize=len(MEMBERS) * len(SPECIES_NAMES))
    def log_bias(self, m: int, species: str) -> np.ndarray:
        b = self.params[m].bias[species]
        st = self.static
        g = rng(self.seed, "member-bias", m, SPECIES_NAMES.index(species))
        noise = self.bias_sampler.sample(self.bias_sampler.draw(g))
        hotspot = self.hotspot_sampler.sample(self.hotspot_sampler.draw(g))
        sources = st.industry_index if species == "so2" else st.urban_index
        log_bias = (
            b.global_ + b.urban * st.urban_index + b.coast * st.coast_index
            + b.mountain * st.mountain_index + b.field_std * noise + b.hotspot_std * sources * hotspot
        )  # fmt: skip
        return np.clip(log_bias, -MAX_LOG_BIAS, MAX_LOG_BIAS).astype(np.float32)

    def common_log_error(self, species: str, run_day: int, lead: int) -> np.ndarray:
        """Log of the error factor every member shares for this species, run and lead."""
        return COMMON_WEIGHT[species] * self.chem.weather.common_error(run_day, lead)

    def fields(self, species: str, run_day: int, lead: int) -> np.ndarray:
        """(member, lat, lon) float32 forecasts; NaN rows for missing members."""
        hour = run_day * 24 + lead
        missing = self.missing(run_day)
        common = self.common_log_error(species, run_day, lead)
        s_idx = SPECIES_NAMES.index(species)
        out = np.full((len(MEMBERS), *common.shape), np.nan, np.float32)
        for m, p in enumerate(self.params):
            if missing[m]:
                continue

            def anchors(tracer: str, day: int, m: int = m) -> np.ndarray:
                return self.member_plumes(tracer, day)[m]

            raw = self.chem.evaluate(species, hour + p.phase_h, anchors)
            noise = self.chem.weather.error_field("member-noise", run_day, lead, m, s_idx)
            noise_std = np.float32(p.noise_std(lead) * RELATIVE_ERROR[species])
            factor = np.exp(self.log_bias(m, species) + common + noise_std * noise)
            raw *= factor
            np.maximum(raw + np.float32(p.bias[species].offset), 0.2 * raw, out=out[m])
        return out
