"""SyntheticGenerator: the public face of the synthetic CAMS stand-in (see DESIGN.md §5)."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd

from dlens.common import layout
from dlens.common.grid import Domain
from dlens.common.species import LEVELS_M, SPECIES_NAMES
from dlens.ingest.synthetic import levels as aloft
from dlens.ingest.synthetic.caching import cached
from dlens.ingest.synthetic.members import (
    MISSING_RATE,
    STABILITY_MEAN,
    URBAN_BIAS_MEAN,
    Ensemble,
    member_median,
    version_changes,
)
from dlens.ingest.synthetic.observing import REPRESENTATIVENESS, RHO_MAX, WITHHELD_SHARE, Observing
from dlens.ingest.synthetic.seeding import check_lead, hour_index, rng, run_index
from dlens.ingest.synthetic.smooth import SmoothField, blend
from dlens.ingest.synthetic.static import Grid, StaticMaps
from dlens.ingest.synthetic.truth import Chemistry, ChemistryParams
from dlens.ingest.synthetic.weather import AMPLITUDE_ERROR, TIMING_ERROR_H, Weather

METEO_VARIABLES: tuple[str, ...] = tuple(layout.METEO_VARIABLES)
VERSION = 2
PAD_CELLS = 30  # margin around the domain from which plumes can enter it
BACKGROUND_STEP = 3  # hours between the member states an analysis hour interpolates
#: Std (log) of each analysis's own error (the observations' and the assimilation's) where it is fully
#: observed; where stations are sparse it shrinks to 0.4 of it and the analysis carries the models' error.
ANALYSIS_ERROR = {"analysis": 0.07, "interim": 0.06, "validated": 0.05}
ANALYSES = tuple(ANALYSIS_ERROR)
ERROR_STEP = 6  # hours between the independent anchors of an analysis error


def _species(species: str) -> str:
    if species not in SPECIES_NAMES:
        raise ValueError(f"unknown species {species!r}; expected one of {', '.join(SPECIES_NAMES)}")
    return species


class SyntheticGenerator:
    """Truth, analyses, 11 members, meteo, stations and static fields of a domain, deterministic from
    (seed, date). Times are naive UTC datetimes; runs are at 00 UTC; leads 0..96 h.

    Daily things (plume anchors, member plumes, bias maps) are cached per instance, so generating
    a run lead by lead costs little more than the arithmetic of each field.
    """

    def __init__(self, domain: Domain, seed: int = 0):
        self.domain, self.seed = domain, int(seed)
        self.grid = Grid.for_domain(domain, PAD_CELLS)
        self.static = StaticMaps(self.grid)
        self.weather = Weather(self.seed, self.grid, self.static)
        self.chemistry = Chemistry(self.weather, self.static, self.grid, ChemistryParams())
        self.ensemble = Ensemble(self.seed, self.chemistry, self.static, self.grid)
        self.observing = Observing(self.seed, domain, self.grid, self.static)
        self._analysis_noise = SmoothField(self.weather.lat, self.weather.lon, 1.0)
        params = {
            "generator": "dlens.ingest.synthetic",
            "version": VERSION,
            "seed": self.seed,
            "domain": domain.to_attrs(),
            "pad_cells": PAD_CELLS,
            "missing_rate": MISSING_RATE,
            "weather_forecast": {"amplitude_error": AMPLITUDE_ERROR, "timing_error_h": TIMING_ERROR_H},
            "analysis": {
                "error": ANALYSIS_ERROR,
                "background_step_h": BACKGROUND_STEP,
                "rho_max": RHO_MAX,
                "withheld_share": WITHHELD_SHARE,
            },
            "shared_member_bias": {"urban": URBAN_BIAS_MEAN, "stability": STABILITY_MEAN},
            "representativeness": REPRESENTATIVENESS,
            "version_changes": {
                str(year): {
                    "member": version_changes(self.seed, year)[0],
                    "from": version_changes(self.seed, year)[1].date().isoformat(),
                }
                for year in range(2015, 2031)
            },
            "chemistry": ChemistryParams().to_dict(),
            "members": [p.to_dict() for p in self.ensemble.params],
        }
        #: What made this world, as JSON (so the store's attributes compare equal to it).
        self.params: dict = json.loads(json.dumps(params))

    # -------------------------------------------------------------------------------- static
    def static_fields(self) -> dict[str, np.ndarray]:
        """Land-sea mask (0..1) and orography (m) on the domain."""
        return {
            "land_sea_mask": self.grid.crop(self.static.land).astype(np.float32),
            "orography": self.grid.crop(self.static.orography).astype(np.float32),
        }

    # ------------------------------------------------------------------------ truth, analyses
    def _truth(self, species: str, hour: int) -> np.ndarray:
        return self.ensemble.analysed(species, hour)

    @cached(maxsize=8)
    def _log_truth(self, species: str, hour: int) -> np.ndarray:
        return np.log(np.maximum(self._truth(species, hour), np.float32(1e-3)))

    @cached(maxsize=2)
    def _true_column(self, hour: int) -> aloft.Column:
        return aloft.Column(self.chemistry.hour(hour).hw.log_blh)

    @cached(maxsize=8)
    def _truth_aloft(self, species: str, hour: int, level: float) -> np.ndarray:
        """The truth at `level` metres: its surface field through the true weather's boundary layer."""
        out = aloft.aloft(
            species, self._truth(species, hour), level, self._true_column(hour), self.chemistry.hour(hour)
        )
        out.flags.writeable = False  # shared, as the surface truth
        return out

    @cached(maxsize=8)
    def _log_truth_aloft(self, species: str, hour: int, level: float) -> np.ndarray:
        return np.log(np.maximum(self._truth_aloft(species, hour, level), np.float32(1e-3)))

    def truth(self, species: str, valid: datetime, level: float = 0) -> np.ndarray:
        """The hidden true concentration (µg/m3) at a valid hour: (lat, lon) float32; `level` metres above
        ground (0, the default: the surface field, as it always was)."""
        species, hour, z = _species(species), hour_index(valid), aloft.check_level(level)
        return self._truth(species, hour) if z == 0 else self._truth_aloft(species, hour, z)

    @cached(maxsize=2)
    def _states(self, species: str, anchor: int) -> np.ndarray:
        """The members' own analysis states at an anchor hour (surface), shared by every level."""
        return self.ensemble.states(species, anchor)

    @cached(maxsize=12)
    def _log_background(self, species: str, anchor: int) -> np.ndarray:
        """Log of the median of the members' own analysis states at an anchor hour."""
        return np.log(np.maximum(member_median(self._states(species, anchor)), np.float32(1e-3)))

    @cached(maxsize=8 * (len(LEVELS_M) - 1))  # 2 anchors × 4 species × the levels above ground
    def _log_background_aloft(self, species: str, anchor: int, level: float) -> np.ndarray:
        """Log of the median of the members' analysis states at `level` metres, each lifted through its own
        boundary layer (the true one with its bias)."""
        column = aloft.Column(self.ensemble.state_log_heights(anchor))
        hc, scale = self.chemistry.hour(anchor), self.ensemble.background_scale(species)
        states = aloft.aloft(species, self._states(species, anchor), level, column, hc, scale)
        return np.log(np.maximum(member_median(states), np.float32(1e-3)))

    @cached(maxsize=8)
    def background(self, species: str, hour: int) -> np.ndarray:
        """Log of the analyses' background at an hour: the member median, log-linear between anchors."""
        first = hour - hour % BACKGROUND_STEP
        w = (hour - first) / BACKGROUND_STEP
        low = self._log_background(species, first)
        return (
            low
            if w == 0
            else low + np.float32(w) * (self._log_background(species, first + BACKGROUND_STEP) - low)
        )

    @cached(maxsize=12)
    def _analysis_error(self, species: str, hour: int, analysis: str) -> np.ndarray:
        k, purpose = SPECIES_NAMES.index(species), f"error-{analysis}"
        anchor, w = divmod(hour, ERROR_STEP)
        draw = self._analysis_noise.draw
        a = draw(rng(self.seed, purpose, anchor, k))
        nodes = a if w == 0 else blend(a, draw(rng(self.seed, purpose, anchor + 1, k)), w / ERROR_STEP)
        return self._analysis_noise.sample(nodes)

    @cached(maxsize=12)
    def _pull(self, species: str, analysis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An analysis's pull towards the truth, the models' weight (1 - pull) and its observations' error."""
        rho = self.observing.pull(species, analysis)
        sigma = np.float32(ANALYSIS_ERROR[analysis]) * (0.4 + 0.6 * rho / RHO_MAX)
        return rho, 1.0 - rho, sigma

    @cached(maxsize=12)
    def _analysis(self, species: str, hour: int, analysis: str) -> np.ndarray:
        rho, models, sigma = self._pull(species, analysis)
        log_value = rho * self._log_truth(species, hour) + models * self.background(species, hour)
        log_value += sigma * self._analysis_error(species, hour, analysis)
        return np.exp(log_value, out=log_value)

    @cached(maxsize=8)
    def _background_aloft(self, species: str, hour: int, level: float) -> np.ndarray:
        """`background` at `level` metres."""
        first = hour - hour % BACKGROUND_STEP
        w = (hour - first) / BACKGROUND_STEP
        low = self._log_background_aloft(species, first, level)
        if w == 0:
            return low
        high = self._log_background_aloft(species, first + BACKGROUND_STEP, level)
        return low + np.float32(w) * (high - low)

    @cached(maxsize=12)
    def _analysis_aloft(self, species: str, hour: int, analysis: str, level: float) -> np.ndarray:
        """`_analysis` at `level` metres: the surface stations pull it less (`levels.pull_aloft`), and the
        observations' error shrinks with the pull as at the surface (the same error field, vertically
        coherent)."""
        rho = self._pull(species, analysis)[0] * np.float32(aloft.pull_aloft(level))
        sigma = np.float32(ANALYSIS_ERROR[analysis]) * (0.4 + 0.6 * rho / RHO_MAX)
        log_value = rho * self._log_truth_aloft(species, hour, level)
        log_value += (1.0 - rho) * self._background_aloft(species, hour, level)
        log_value += sigma * self._analysis_error(species, hour, analysis)
        return np.exp(log_value, out=log_value)

    def analysis(self, species: str, valid: datetime, kind: str = "analysis", level: float = 0) -> np.ndarray:
        """An analysis at a valid hour: (lat, lon) float32. `kind`: ``analysis`` (near real time, the
        default target), ``interim`` or ``validated`` (the reanalyses: more stations, less error); `level`:
        metres above ground (0, the default: the surface).

        Each member's own analysis state is pulled towards the truth by the observation density of the
        stations that analysis assimilates; the analysis is their median (log-linear between the members'
        3-hourly states) with the observations' own error where they pull it: where stations are sparse, the
        analysis carries the models' error. Aloft, the truth and the members' states are lifted through
        their boundary layers (:mod:`.levels`) and the surface stations pull less (`levels.pull_aloft`).
        """
        if kind not in ANALYSES:
            raise ValueError(f"unknown analysis {kind!r}; expected one of {', '.join(ANALYSES)}")
        species, hour, z = _species(species), hour_index(valid), aloft.check_level(level)
        return self._analysis(species, hour, kind) if z == 0 else self._analysis_aloft(species, hour, kind, z)

    # ------------------------------------------------------------------------------- stations
    def stations(self) -> pd.DataFrame:
        """The stations of the domain: code, country, type, area, latitude, longitude, altitude (the
        orography of the cell), withheld, and per species whether the station measures it."""
        st = self.observing.stations
        table = st.table
        return pd.DataFrame(
            {
                "code": table["code"], "country": table["country"], "type": table["type"],
                "area": table["area"], "latitude": table["latitude"], "longitude": table["longitude"],
                "altitude": st.sample(self.static_fields()["orography"]),
                "withheld": (table["role"] == "withheld").to_numpy(),
                **{f"measures_{sp}": table[sp].to_numpy() for sp in SPECIES_NAMES},
            }
        )  # fmt: skip

    def observations(self, species: str, valid: datetime) -> np.ndarray:
        """Hourly observations at the stations of the domain (station order of `stations`): the truth at
        the station with a representativeness error by type; NaN where not measured or missing."""
        species, hour = _species(species), hour_index(valid)
        return self.observing.observe(species, hour, self._truth(species, hour))

    # ------------------------------------------------------------------------------- members
    @cached(maxsize=2)
    def _members(self, species: str, run_day: int, lead: int) -> np.ndarray:
        out = self.ensemble.fields(species, run_day, lead)
        out.flags.writeable = False
        return out

    @cached(maxsize=1)
    def _member_column(self, run_day: int, lead: int) -> aloft.Column:
        return aloft.Column(self.ensemble.forecast_log_heights(run_day, lead))

    def members(self, species: str, run: datetime, lead: int, level: float = 0) -> np.ndarray:
        """(11, lat, lon) float32 member forecasts, NaN rows for missing members; `level` metres above
        ground (0, the default: the surface). Aloft each member's surface field is lifted through the
        boundary layer it ran on: the forecast's, with its own bias and error of the run."""
        species, run_day, lead = _species(species), run_index(run), check_lead(lead)
        z = aloft.check_level(level)
        surface = self._members(species, run_day, lead)
        if z == 0:
            return surface.copy()
        hc = self.chemistry.forecast_hour(run_day, lead)
        column, scale = self._member_column(run_day, lead), self.ensemble.background_scale(species)
        return aloft.aloft(species, surface, z, column, hc, scale)

    def missing_members(self, run: datetime) -> np.ndarray:
        """(11,) bool: the members missing from a run, the same for every species."""
        return self.ensemble.missing(run_index(run))

    def member_versions(self, run: datetime) -> np.ndarray:
        """(11,) int: how many version changes each member has had by a run."""
        day = run_index(run)
        return np.array([self.ensemble.version(m, day) for m in range(len(self.ensemble.params))])

    # --------------------------------------------------------------------------------- meteo
    def meteo(self, variable: str, run: datetime, lead: int) -> np.ndarray:
        """The IFS-like forecast the members run on: t2m (K), blh (m), u10/v10 (m/s), ssrd (W m-2);
        its error grows with lead. (lat, lon) float32."""
        return self.weather.forecast(variable, run_index(run), check_lead(lead))

    def true_meteo(self, variable: str, valid: datetime) -> np.ndarray:
        """The weather the truth was made with, for checking forecasts."""
        return self.weather.truth(variable, hour_index(valid))

    # --------------------------------------------------------------------------------- floor
    def error_floor(self, species: str, run: datetime, lead: int) -> dict[str, float]:
        """Additive sums over the cells of one forecast field, against the truth: ``n``; ``weather_sq``
        (a perfect chemistry model on the forecast weather: the error every member shares, which no
        combination of them removes); ``median_sq`` (the median of the available members)."""
        species, run_day, lead = _species(species), run_index(run), check_lead(lead)
        truth = self._truth(species, run_day * 24 + lead).astype(np.float64)
        perfect = self.chemistry.on_forecast_weather(species, run_day, lead)
        median = member_median(self._members(species, run_day, lead))
        ok = np.isfinite(median)
        return {
            "n": float(truth.size),
            "weather_sq": float(((perfect - truth) ** 2).sum()),
            "median_sq": float(((median - truth)[ok] ** 2).sum()),
        }

    def analysis_floor(self, species: str, valid: datetime) -> dict[str, float]:
        """Additive sums over the cells of one hour: ``n`` and, per analysis, ``<kind>_sq`` against the
        truth (no forecast can beat an analysis on that analysis)."""
        species, hour = _species(species), hour_index(valid)
        truth = self._truth(species, hour).astype(np.float64)
        out = {"n": float(truth.size)}
        for kind in ANALYSES:
            out[f"{kind}_sq"] = float(((self._analysis(species, hour, kind) - truth) ** 2).sum())
        return out
