"""The store's layout (DESIGN §3): groups, dimensions, chunking, ingest-status codes.

Writers (services/ingest) build the store from these definitions and `schema.validate_store`
checks a store against them, so they cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from dlens.common.species import LEAD_BLOCKS, MEMBERS, SPECIES_NAMES

SCHEMA_VERSION = 2
#: What changed at each schema version, for the message about an older store.
SCHEMA_HISTORY = {
    1: "the first layout (analysis only, no reanalysis or observation groups; the first synthetic world)",
    2: "reanalysis/interim and reanalysis/validated beside the analysis, an observations group of stations, "
    "the second synthetic world (members on the forecast weather, a CAMS-like analysis)",
}

FORECASTS, ANALYSIS, METEO, STATIC, PRODUCTS = "forecasts", "analysis", "meteo", "static", "products"
REANALYSIS_INTERIM, REANALYSIS_VALIDATED = "reanalysis/interim", "reanalysis/validated"
#: The gridded targets a model can be trained against and a product scored against, and their groups.
Target = Literal["analysis", "interim", "validated"]
TARGETS: dict[Target, str] = {
    "analysis": ANALYSIS, "interim": REANALYSIS_INTERIM, "validated": REANALYSIS_VALIDATED,
}  # fmt: skip
OBSERVATIONS = "observations"

#: Coordinate encodings understood by xarray's CF decoding.
TIME_UNITS = "hours since 1970-01-01 00:00:00"
TIME_ATTRS = {"units": TIME_UNITS, "calendar": "proleptic_gregorian"}

FORECAST_DIMS = ("run", "lead", "member", "level", "latitude", "longitude")
ANALYSIS_DIMS = ("time", "level", "latitude", "longitude")
METEO_DIMS = ("run", "lead", "latitude", "longitude")
PRODUCT_DIMS = ("run", "lead", "level", "latitude", "longitude")
STATIC_DIMS = ("latitude", "longitude")
OBSERVATION_DIMS = ("time", "station")
#: Station metadata of the observations group: name -> dtype (along the station dimension).
STATION_FIELDS: dict[str, str] = {
    "station_code": "str", "station_type": "str", "station_area": "str", "station_latitude": "float64",
    "station_longitude": "float64", "station_altitude": "float32", "withheld": "bool",
}  # fmt: skip

#: Per (run, member, species) for forecasts and (time, species) for the analysis.
STATUS = "ingest_status"
#: Per (run|time, species, stat): additive sums for normalisation statistics.
STATS = "ingest_stats"
STAT_NAMES = ("n", "sum", "sumsq", "logsum", "logsumsq", "min", "max")

#: Status/stats arrays are written by the coordinator only, in chunks this long along run/time.
AXIS_CHUNK = 1024
#: Above this many cells a field is tiled into 2 x 2 chunks grouped in one shard.
TILE_ABOVE_CELLS = 256 * 256


class Status(IntEnum):
    """Ingest status of one cell: readers trust only COMPLETE and ABSENT."""

    PENDING = 0  # nothing committed (never written, or a crash before the commit)
    COMPLETE = 1  # data written, then marked
    ABSENT = 2  # the source had no data for it (a missing member): the field stays NaN


@dataclass(frozen=True)
class Chunking:
    """Chunk and shard shapes for one array."""

    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None


def field_chunking(leading: tuple[int, ...], nlat: int, nlon: int) -> Chunking:
    """Chunking of an array whose last two dims are (latitude, longitude).

    `leading` holds the chunk lengths of the other dims (one sample: one run, lead, level, all
    members). Small domains are one spatial chunk; large ones (the full grid) are 2 x 2 tiles
    grouped in a shard that holds the whole field, so one writer owns the shard of its field.
    """
    if nlat * nlon > TILE_ABOVE_CELLS and nlat % 2 == 0 and nlon % 2 == 0:
        return Chunking((*leading, nlat // 2, nlon // 2), (*leading, nlat, nlon))
    return Chunking((*leading, nlat, nlon), None)


#: IFS-like weather predictors of the meteo group, with units.
METEO_VARIABLES: dict[str, str] = {"t2m": "K", "blh": "m", "u10": "m s-1", "v10": "m s-1", "ssrd": "W m-2"}
#: Fields of the static group.
STATIC_VARIABLES: dict[str, str] = {"land_sea_mask": "1", "orography": "m"}
#: Where the operational CAMS median product goes when ingested: a reference, never a model input.
CAMS_ENSEMBLE_PRODUCT = f"{PRODUCTS}/cams-ensemble"


@dataclass(frozen=True)
class AxisGroup:
    """A group that grows along one axis (run or time), with a status array over labelled dims."""

    path: str
    axis: str
    variables: tuple[str, ...]
    dims: tuple[str, ...]
    status_dims: tuple[str, ...]
    gaps: bool = False  # a complete entry may hold NaN cells (a station that did not report)

    @property
    def has_stats(self) -> bool:
        return "species" in self.status_dims


#: Every group with a run or time axis, keyed by path.
AXIS_GROUPS: dict[str, AxisGroup] = {
    g.path: g
    for g in (
        AxisGroup(FORECASTS, "run", SPECIES_NAMES, FORECAST_DIMS, ("member", "species")),
        AxisGroup(ANALYSIS, "time", SPECIES_NAMES, ANALYSIS_DIMS, ("species",)),
        AxisGroup(REANALYSIS_INTERIM, "time", SPECIES_NAMES, ANALYSIS_DIMS, ("species",)),
        AxisGroup(REANALYSIS_VALIDATED, "time", SPECIES_NAMES, ANALYSIS_DIMS, ("species",)),
        AxisGroup(METEO, "run", tuple(METEO_VARIABLES), METEO_DIMS, ("variable",)),
        AxisGroup(CAMS_ENSEMBLE_PRODUCT, "run", SPECIES_NAMES, PRODUCT_DIMS, ("species",)),
    )
}

#: The phase-two predictors an input may lack (dlens.model.predictors), in order.
OPTIONAL_PREDICTORS = ("meteo", "meteo_change", "recent_analysis")
#: The values of the labelled (string) dimensions.
LABELS: dict[str, tuple[str, ...]] = {
    "predictor": OPTIONAL_PREDICTORS,
    "member": MEMBERS,
    "species": SPECIES_NAMES,
    "variable": tuple(METEO_VARIABLES),
    "stat": STAT_NAMES,
    "lead_block": tuple(LEAD_BLOCKS),
    "coefficient": ("intercept", "slope", "samples"),
}

_PRODUCT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SAFE_NAME = re.compile(r"(?!\.)(?!.*\.\.)[A-Za-z0-9._-]+")


def check_name(value: str, what: str) -> str:
    """`value` when it is safe as one path component (letters, digits, '-', '_', '.'; no '..', no leading
    '.'); else ValueError naming it: config names and model ids become store paths."""
    if not _SAFE_NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r}: use letters, digits, '-', '_' or '.' (no '..', no leading '.')")
    return value


def product_group(name: str) -> AxisGroup:
    """The group of product `name` (median, weighted, dlens-<model id>, …) under `products/`."""
    if not _PRODUCT_NAME.match(name):
        raise ValueError(f"product name {name!r}: use lower-case letters, digits, '.', '_' or '-'")
    return AxisGroup(f"{PRODUCTS}/{name}", "run", SPECIES_NAMES, PRODUCT_DIMS, ("species",))


#: Hourly station observations (created when a store first receives stations); stats are not kept.
OBSERVATION_GROUP = AxisGroup(OBSERVATIONS, "time", SPECIES_NAMES, OBSERVATION_DIMS, ("species",), gaps=True)


def axis_group(path: str) -> AxisGroup:
    """The definition of the group at `path`: a fixed group, the observations, or any product under
    `products/`."""
    if path in AXIS_GROUPS:
        return AXIS_GROUPS[path]
    if path == OBSERVATIONS:
        return OBSERVATION_GROUP
    if path.startswith(f"{PRODUCTS}/"):
        return product_group(path.removeprefix(f"{PRODUCTS}/"))
    raise KeyError(f"{path!r} is not a group with a run or time axis")
