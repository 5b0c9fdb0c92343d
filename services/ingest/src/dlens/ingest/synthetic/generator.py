"""SyntheticGenerator: the public face of the synthetic CAMS stand-in (see DESIGN.md §5)."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from dlens.common import layout
from dlens.common.grid import Domain
from dlens.common.species import SPECIES_NAMES
from dlens.ingest.synthetic.caching import cached
from dlens.ingest.synthetic.members import COMMON_WEIGHT, MISSING_RATE, Ensemble
from dlens.ingest.synthetic.seeding import check_lead, hour_index, rng, run_index
from dlens.ingest.synthetic.smooth import SmoothField
from dlens.ingest.synthetic.static import Grid, StaticMaps
from dlens.ingest.synthetic.truth import Chemistry, ChemistryParams
from dlens.ingest.synthetic.weather import Weather

METEO_VARIABLES: tuple[str, ...] = tuple(layout.METEO_VARIABLES)
VERSION = 1
PAD_CELLS = 30  # margin around the domain from which plumes can enter it
ANALYSIS_ERROR = 0.06  # std of the analysis' multiplicative (log) error


def _species(species: str) -> str:
    if species not in SPECIES_NAMES:
        raise ValueError(f"unknown species {species!r}; expected one of {', '.join(SPECIES_NAMES)}")
    return species


class SyntheticGenerator:
    """Truth, analysis, 11 members, meteo and static fields of a domain, deterministic from
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
        self._analysis_noise = SmoothField(self.weather.lat, self.weather.lon, 1.0)
        self.params: dict = {
            "generator": "dlens.ingest.synthetic",
            "version": VERSION,
            "seed": self.seed,
            "domain": domain.to_attrs(),
            "pad_cells": PAD_CELLS,
            "missing_rate": MISSING_RATE,
            "analysis_error": ANALYSIS_ERROR,
            "common_error": {
                "std_lead0": self.weather.common_amplitude(0),
                "std_lead96": self.weather.common_amplitude(96),
                "species_weight": dict(COMMON_WEIGHT),
            },
            "chemistry": ChemistryParams().to_dict(),
            "members": [p.to_dict() for p in self.ensemble.params],
        }

    # -------------------------------------------------------------------------------- static
    def static_fields(self) -> dict[str, np.ndarray]:
        """Land-sea mask (0..1) and orography (m) on the domain."""
        return {
            "land_sea_mask": self.grid.crop(self.static.land).astype(np.float32),
            "orography": self.grid.crop(self.static.orography).astype(np.float32),
        }

    # ------------------------------------------------------------------------ truth, analysis
    @cached(maxsize=8)
    def _truth(self, species: str, hour: int) -> np.ndarray:
        return self.chemistry.truth(species, hour)

    def truth(self, species: str, valid: datetime) -> np.ndarray:
        """The hidden true concentration (µg/m3) at a valid hour: (lat, lon) float32."""
        return self._truth(_species(species), hour_index(valid))

    @cached(maxsize=8)
    def _analysis(self, species: str, hour: int) -> np.ndarray:
        g = rng(self.seed, "analysis", hour, SPECIES_NAMES.index(species))
        err = self._analysis_noise.sample(self._analysis_noise.draw(g))
        return (self._truth(species, hour) * np.exp(np.float32(ANALYSIS_ERROR) * err)).astype(np.float32)

    def analysis(self, species: str, valid: datetime) -> np.ndarray:
        """Truth times a small smooth analysis error: the target (lat, lon) float32."""
        return self._analysis(_species(species), hour_index(valid))

    # ------------------------------------------------------------------------------- members
    @cached(maxsize=2)
    def _members(self, species: str, run_day: int, lead: int) -> np.ndarray:
        out = self.ensemble.fields(species, run_day, lead)
        out.flags.writeable = False
        return out

    def members(self, species: str, run: datetime, lead: int) -> np.ndarray:
        """(11, lat, lon) float32 member forecasts, NaN rows for missing members."""
        return self._members(_species(species), run_index(run), check_lead(lead)).copy()

    def missing_members(self, run: datetime) -> np.ndarray:
        """(11,) bool: the members missing from a run, the same for every species."""
        return self.ensemble.missing(run_index(run))

    # --------------------------------------------------------------------------------- meteo
    def meteo(self, variable: str, run: datetime, lead: int) -> np.ndarray:
        """IFS-like forecast of the weather driving the truth: t2m (K), blh (m), u10/v10 (m/s),
        ssrd (W m-2); its error grows with lead. (lat, lon) float32."""
        return self.weather.forecast(variable, run_index(run), check_lead(lead))

    def true_meteo(self, variable: str, valid: datetime) -> np.ndarray:
        """The weather the truth was made with, for checking forecasts."""
        return self.weather.truth(variable, hour_index(valid))

    # --------------------------------------------------------------------------------- floor
    def error_floor(self, species: str, run: datetime, lead: int) -> dict[str, float]:
        """Additive sums over cells: ``n``, ``analysis_sq`` (analysis vs truth), ``common_sq``
        (the error shared by all members, which a perfect combination would keep) and
        ``median_sq`` (median of the available members vs analysis)."""
        species, run_day, lead = _species(species), run_index(run), check_lead(lead)
        hour = run_day * 24 + lead
        truth = self._truth(species, hour).astype(np.float64)
        analysis = self._analysis(species, hour)
        common = np.exp(self.ensemble.common_log_error(species, run_day, lead)) - 1.0
        fields = self._members(species, run_day, lead)
        present = ~self.ensemble.missing(run_day)
        median = np.median(fields[present], axis=0) if present.any() else np.full_like(analysis, np.nan)
        med_err = (median - analysis)[np.isfinite(median)].astype(np.float64)
        return {
            "n": float(truth.size),
            "analysis_sq": float(((analysis - truth) ** 2).sum()),
            "common_sq": float(((truth * common) ** 2).sum()),
            "median_sq": float((med_err**2).sum()),
        }
