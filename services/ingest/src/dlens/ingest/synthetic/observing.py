"""The observing system: stations at the real EEA sites, which of them the analyses assimilate, and what
they measure.

The stations are the EEA network (``eea_stations.csv.gz``, written by ``tools/eea_stations.py``): code,
type (background, traffic, industrial), area, position and the species each measures. Each station draws
a role from the seed and its code: withheld (never assimilated: for verification), reporting in near
real time (assimilated by the analysis), or delayed (reaching only the reanalyses). Only background
stations are assimilated, as in CAMS. The observation density of a species — the sum of Gaussian
kernels around the assimilated stations that measure it — sets how strongly an analysis is pulled from
the models towards the truth: dense in cities and in western and central Europe, sparse at sea, in the
mountains and in the east. An observation is the truth at the station (bilinear) times a
representativeness error by station type and area.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.special import ndtri

from dlens.common.grid import RESOLUTION, Domain, bilinear_weights, inside
from dlens.common.species import SPECIES_NAMES
from dlens.ingest.synthetic.caching import cached
from dlens.ingest.synthetic.seeding import rng
from dlens.ingest.synthetic.static import Grid, StaticMaps

WITHHELD_SHARE = 0.15
NRT_SHARE = 0.7  # of the assimilable stations, those whose data arrive in time for the analysis
INTERIM_SHARE = 0.5  # of the delayed ones, those the interim reanalysis already has
KERNEL_CELLS = 2.5  # radius (std, cells) of a station's influence on an analysis
#: Pull of the analysis towards the truth: RHO_MAX × (1 - exp(-density)), halved in high mountains.
RHO_MAX = 0.9
MISSING_HOURS = 0.04
#: Representativeness error (log) by station type (traffic, industrial) or area (background): mean, std.
REPRESENTATIVENESS: dict[str, dict[str, tuple[float, float]]] = {
    "traffic": {"o3": (-0.4, 0.35), "no2": (0.4, 0.36), "so2": (0.1, 0.45), "pm10": (0.15, 0.3)},
    "industrial": {"o3": (-0.15, 0.3), "no2": (0.25, 0.4), "so2": (0.5, 0.6), "pm10": (0.12, 0.35)},
    "urban": {"o3": (-0.15, 0.25), "no2": (0.25, 0.28), "so2": (0.1, 0.4), "pm10": (0.08, 0.42)},
    "suburban": {"o3": (-0.08, 0.22), "no2": (0.12, 0.32), "so2": (0.05, 0.4), "pm10": (0.05, 0.42)},
    "rural": {"o3": (0.0, 0.18), "no2": (-0.02, 0.36), "so2": (0.0, 0.45), "pm10": (0.0, 0.38)},
}
ROLES = ("withheld", "nrt", "delayed")


@functools.lru_cache(maxsize=1)
def eea_stations() -> pd.DataFrame:
    """The EEA station network on the CAMS grid (package data)."""
    with resources.files("dlens.ingest.synthetic").joinpath("eea_stations.csv.gz").open("rb") as f:
        table = pd.read_csv(f, compression="gzip", keep_default_na=False)
    for sp in SPECIES_NAMES:
        table[sp] = table["measures"].str.split().apply(lambda names, sp=sp: sp in names)
    table["kind"] = np.where(
        table["type"] == "background", table["area"].str.split("-").str[0], table["type"]
    )
    return table


@dataclass(frozen=True)
class Stations:
    """The stations of a domain: metadata, roles and bilinear weights onto the domain's cells."""

    table: pd.DataFrame  # code, country, type, area, latitude, longitude, kind, role, o3..pm10 (measured)
    rows: np.ndarray  # (n, 4) cell row indices of the four neighbours
    cols: np.ndarray  # (n, 4) cell column indices
    weights: np.ndarray  # (n, 4) bilinear weights

    def __len__(self) -> int:
        return len(self.table)

    def sample(self, field: np.ndarray) -> np.ndarray:
        """A (lat, lon) field at the stations, bilinearly."""
        return (field[self.rows, self.cols] * self.weights).sum(axis=1).astype(np.float32)


def station_uniform(seed: int, purpose: str, codes: pd.Series) -> np.ndarray:
    """A uniform number in [0, 1) per station from the seed, a purpose and the station's code alone (so a
    station keeps its draws in any domain)."""
    keys = (f"{seed}:{purpose}:{code}".encode() for code in codes)
    return (np.fromiter((zlib.crc32(k) for k in keys), np.float64, len(codes)) + 0.5) / 2.0**32


def station_roles(seed: int, codes: pd.Series) -> np.ndarray:
    """withheld / nrt / delayed per station, from the seed and the station's code alone."""
    withheld = station_uniform(seed, "withheld", codes) < WITHHELD_SHARE
    nrt = station_uniform(seed, "nrt", codes) < NRT_SHARE
    return np.where(withheld, "withheld", np.where(nrt, "nrt", "delayed"))


class Observing:
    """The stations and observation densities of a generator's domain."""

    def __init__(self, seed: int, domain: Domain, grid: Grid, static: StaticMaps):
        self.seed, self.domain, self.grid, self.static = seed, domain, grid, static
        table = eea_stations()
        lat0, lat1 = grid.lat[0] - RESOLUTION / 2, grid.lat[-1] + RESOLUTION / 2
        lon0, lon1 = grid.lon[0] - RESOLUTION / 2, grid.lon[-1] + RESOLUTION / 2
        near = table[table.latitude.between(lat0, lat1) & table.longitude.between(lon0, lon1)].copy()
        near["role"] = station_roles(seed, near["code"])
        self.work_stations = near.reset_index(drop=True)

    @functools.cached_property
    def stations(self) -> Stations:
        """The stations inside the domain (cell centres ± half a cell)."""
        d, t = self.domain, self.work_stations
        table = t[inside(d, t.latitude.to_numpy(), t.longitude.to_numpy())].reset_index(drop=True)
        rows, cols, weights = bilinear_weights(d, table.latitude.to_numpy(), table.longitude.to_numpy())
        return Stations(table, rows, cols, weights)

    def assimilated(self, species: str, analysis: str) -> pd.DataFrame:
        """The stations an analysis (`analysis`, `interim` or `validated`) assimilates for a species."""
        t = self.work_stations
        usable = (t["type"] == "background") & t[species] & (t["role"] != "withheld")
        if analysis == "analysis":
            return t[usable & (t["role"] == "nrt")]
        if analysis == "interim":
            early = station_uniform(self.seed, "interim", t["code"]) < INTERIM_SHARE
            return t[usable & ((t["role"] == "nrt") | early)]
        if analysis == "validated":
            return t[usable]
        raise ValueError(f"unknown analysis {analysis!r}")

    @cached(maxsize=12)
    def pull(self, species: str, analysis: str) -> np.ndarray:
        """How far an analysis is pulled from the models towards the truth, 0..RHO_MAX, on the domain."""
        stations = self.assimilated(species, analysis)
        counts = np.zeros(self.grid.shape, np.float32)
        for lat, lon in zip(stations.latitude, stations.longitude):
            ij = self.grid.index(lon, lat)
            if ij is not None:
                counts[ij] += 1.0
        density = gaussian_filter(counts, KERNEL_CELLS, mode="constant") * np.float32(
            2 * np.pi * KERNEL_CELLS**2
        )
        rho = (
            RHO_MAX
            * (1.0 - np.exp(-density))
            * (1.0 - 0.5 * np.clip(self.static.orography / 2500.0, 0.0, 1.0))
        )
        return self.grid.crop(rho).astype(np.float32)

    def observe(self, species: str, hour: int, truth: np.ndarray) -> np.ndarray:
        """(station,) float32 observations at an hour: NaN where the station does not measure the species
        or the hour is missing."""
        st = self.stations
        mean, std, site, measured = self._site_error(species)
        g = rng(self.seed, "observation", hour, SPECIES_NAMES.index(species))
        hourly = g.standard_normal(len(st)).astype(np.float32)
        missing = g.random(len(st)) < MISSING_HOURS
        values = st.sample(truth) * np.exp(mean + site + 0.8 * std * hourly)
        values[missing | ~measured] = np.nan
        return values.astype(np.float32)

    @cached(maxsize=4)
    def _site_error(self, species: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per station: the mean and std of the representativeness error of its kind, the lasting error of
        its site, and whether it measures the species."""
        t = self.stations.table
        mean = np.array([REPRESENTATIVENESS[kind][species][0] for kind in t["kind"]], np.float32)
        std = np.array([REPRESENTATIVENESS[kind][species][1] for kind in t["kind"]], np.float32)
        site = ndtri(station_uniform(self.seed, f"site-{species}", t["code"])).astype(np.float32)
        return mean, std, 0.6 * std * site, t[species].to_numpy()
