"""A small store whose members have known, steady skills: the mock-data factory of the tests.

Unlike the synthetic generator (realistic, for benchmarks), every error here is chosen: member m is
the analysis times (1 + bias[m]) plus Gaussian noise of standard deviation noise[m] (in % of the
local value), so tests know which member is best and what a good weighting must achieve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from dlens.common.grid import parse_domain
from dlens.common.layout import ANALYSIS, FORECASTS, METEO, METEO_VARIABLES, TARGETS, Status
from dlens.common.species import MEMBERS, SPECIES_NAMES
from dlens.common.writer import FieldWriter, StoreCoordinator, StoreSpec, field_stats, merge_stats

#: Typical concentration of each species in the mock store, µg/m³.
BASE = {"o3": 70.0, "no2": 30.0, "so2": 5.0, "pm10": 25.0}
#: Change of the mock truth per km of height (the factor at z metres is exp(rate · z / 1000)): O3 grows
#: with height, the surface-emitted species fall.
LEVEL_RATE = {"o3": 0.1, "no2": -1.0, "so2": -0.5, "pm10": -0.4}


def level_factor(species: str, level: int) -> float:
    """What the mock truth of `species` is multiplied by at `level` metres (1 at the surface)."""
    return float(np.exp(LEVEL_RATE[species] * level / 1000.0))


@dataclass(frozen=True)
class MockSkill:
    """Member errors: relative noise and bias per member (11 values each), absent (day, member)s, and a
    bias every member shares that varies across the domain (`shared_bias_map`)."""

    noise: tuple[float, ...] = (0.05, 0.06, 0.08, 0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.34, 0.4)
    bias: tuple[float, ...] = (0.0, 0.02, -0.03, 0.05, -0.06, 0.08, -0.1, 0.12, -0.14, 0.16, -0.18)
    absent: tuple[tuple[int, int], ...] = ((2, 0), (5, 3), (10, 1))
    shared_bias: float = 0.0

    def shared_bias_map(self, shape: tuple[int, int]) -> np.ndarray:
        """What every member is multiplied by: 1 − shared_bias in the west to 1 + shared_bias in the east."""
        return 1.0 + self.shared_bias * np.broadcast_to(np.linspace(-1.0, 1.0, shape[1]), shape)


def build_mock_store(
    url: str,
    start: datetime,
    days: int,
    domain: str = "44.05,45.55,7.05,9.35",
    leads: Sequence[int] = (0, 12, 24, 36, 48, 60, 72, 84, 96),
    skill: MockSkill = MockSkill(),
    seed: int = 0,
    reanalyses: dict[str, float] | None = None,
    meteo: bool = False,
    levels: Sequence[int] = (0,),
) -> StoreSpec:
    """Write analysis (hourly, every valid time) and members for `days` runs into a new store; `reanalyses`:
    the reanalyses to write too (interim, validated), each the analysis times its factor, so that a test
    tells which target was read; with `meteo` the meteo predictors of every run (`mock_meteo`).

    `levels` (metres, ascending, the first 0 by default): at a level above ground the truth is the
    surface's times `level_factor`, and each member errs on it as at the surface (its bias, and noise from
    a random stream of its own, so the first level's values never depend on which levels follow)."""
    levels = tuple(int(v) for v in levels)
    if not levels or list(levels) != sorted(set(levels)):
        raise ValueError(f"levels {list(levels)}: expected ascending, distinct heights in metres")
    spec = StoreSpec(parse_domain(domain), tuple(leads), levels)
    coordinator = StoreCoordinator(url, spec)
    writer = FieldWriter(url)
    rng = np.random.default_rng(seed)
    rng_aloft = np.random.default_rng([seed, 1])  # the levels after the first draw from their own stream
    nlat, nlon = spec.domain.shape
    yy, xx = np.meshgrid(np.linspace(0, 1, nlat), np.linspace(0, 1, nlon), indexing="ij")
    pattern = 1.0 + 0.5 * np.sin(3 * xx + 1.0) * np.cos(2 * yy)  # smooth, positive, 0.5..1.5

    def truth(species: str, t: datetime) -> np.ndarray:
        daily = 1.0 + 0.2 * np.sin(t.toordinal() * 0.9 + SPECIES_NAMES.index(species))
        diurnal = 1.0 + 0.4 * np.sin(2 * np.pi * (t.hour - 8) / 24)
        return (BASE[species] * pattern * daily * diurnal).astype(np.float32)

    runs = [start + timedelta(days=d) for d in range(days)]
    times = [start + timedelta(hours=h) for h in range((days - 1) * 24 + max(leads) + 1)]
    for group, factor in [(ANALYSIS, 1.0), *((TARGETS[k], f) for k, f in (reanalyses or {}).items())]:
        t_pos = coordinator.ensure_axis(group, times)
        for species in SPECIES_NAMES:
            for t, pos in zip(times, t_pos):
                for vi, level in enumerate(levels):
                    writer.write(
                        group, species, (pos, vi), factor * level_factor(species, level) * truth(species, t)
                    )
        coordinator.mark(group, t_pos, Status.COMPLETE)
    r_pos = coordinator.ensure_axis(FORECASTS, runs)
    noise = np.array(skill.noise)[:, None, None]
    bias = np.array(skill.bias)[:, None, None]
    shared = skill.shared_bias_map((nlat, nlon))
    for d, (run, pos) in enumerate(zip(runs, r_pos)):
        absent = [m for day, m in skill.absent if day == d]
        for species in SPECIES_NAMES:
            stats = field_stats(np.empty(0))
            for li, lead in enumerate(leads):
                surface = truth(species, run + timedelta(hours=lead))[None]
                for vi, level in enumerate(levels):
                    value = level_factor(species, level) * surface
                    draw = (rng if vi == 0 else rng_aloft).standard_normal((len(MEMBERS), nlat, nlon))
                    members = value * (1 + bias) + noise * value * draw
                    members *= shared
                    members = np.maximum(members, 0.0)
                    members[absent] = np.nan
                    writer.write(FORECASTS, species, (pos, li, slice(None), vi), members)
                    stats = merge_stats(stats, field_stats(members))
            status = np.full(len(MEMBERS), Status.COMPLETE, dtype=np.uint8)
            status[absent] = Status.ABSENT
            coordinator.write_stats(FORECASTS, pos, species, stats)
            coordinator.mark(FORECASTS, pos, status, (slice(None), SPECIES_NAMES.index(species)))
    if meteo:
        m_pos = coordinator.ensure_axis(METEO, runs)
        for run, pos in zip(runs, m_pos):
            for index, variable in enumerate(METEO_VARIABLES):
                for li, lead in enumerate(leads):
                    field = mock_meteo(index, run, lead, pattern)
                    writer.write(METEO, variable, (pos, li), field)
        coordinator.mark(METEO, m_pos, Status.COMPLETE)
    coordinator.refresh_normalisation()
    return spec


def mock_meteo(index: int, run: datetime, lead: int, pattern: np.ndarray) -> np.ndarray:
    """Meteo variable number `index` (of METEO_VARIABLES) forecast by `run` at `lead`: a smooth field of the
    variable's order of magnitude that changes with the hour and the day of the valid time, plus a forecast
    error that depends on the run and grows with the lead (0 at lead 0), so that two runs disagree about
    the same valid time and reading another run's meteo shows."""
    scale = (280.0, 800.0, 5.0, 5.0, 300.0)[index]
    valid = run + timedelta(hours=lead)
    phase = 2 * np.pi * (valid.hour / 24 + valid.toordinal() * 0.37 + index / 5)
    error = 0.05 * lead / 24 * np.cos(2 * np.pi * (run.toordinal() * 0.29 + index / 5) + 2 * pattern)
    return (scale * (1.0 + 0.1 * np.sin(phase) * pattern + error)).astype(np.float32)
