"""EEA station files into the store's `observations` group, as `dlens-ingest files` meets them.

Two kinds of Parquet file, told apart by their columns:
- the **station network**: the EEA station metadata, one row per station (`Air.Quality.Station.EoI.Code`,
  `Station.Type`, `Station.Area`, `Longitude`, `Latitude`) or one per sampling point (plus
  `Sampling.Point.Id` and `Air.Pollutant`, which also say what each station measures);
- **e-reporting series** as the EEA download service delivers them (`Samplingpoint, Pollutant, Start, End,
  Value, Unit, AggType, Validity, Verification, ...`), one sampling point per file.

Rules: the network keeps the stations inside the store's domain and is written once (a store keeps one
network); a series must be hourly (`AggType` hour), in µg/m³, of O3, NO2, SO2 or PM10, at a station of the
network (by its sampling point in a sampling-point table of the same call, else a `stationcode` column).
Values whose `Validity` is below 1 (not valid) and rows not one hour long (seen at a clock change) are
dropped; every verification level is kept (up-to-date E2a data arrive unverified, `Verification` 3).
Times are read as the EEA's UTC+1 and each hourly mean is labelled by the end of its hour in UTC. Only the
hours of the store's forecast period (first run to last run plus the longest lead) are kept, and an hour
is committed only where some station holds a valid value. One writer merges each hour with what the
store held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dlens.common.grid import inside
from dlens.common.layout import FORECASTS, OBSERVATIONS, Status
from dlens.common.species import SPECIES_NAMES
from dlens.common.writer import StoreCoordinator, StoreSpec
from dlens.ingest.readers import IngestError

NETWORK_COLUMNS = frozenset(
    {"Air.Quality.Station.EoI.Code", "Station.Type", "Station.Area", "Longitude", "Latitude"}
)
SERIES_COLUMNS = frozenset(
    {"Samplingpoint", "Pollutant", "Start", "End", "Value", "Unit", "AggType", "Validity", "Verification"}
)
#: EEA pollutant codes (http://dd.eionet.europa.eu/vocabulary/aq/pollutant) of the store's species.
POLLUTANTS = {7: "o3", 8: "no2", 1: "so2", 5: "pm10"}
NAMES = {"O3": "o3", "NO2": "no2", "SO2": "so2", "PM10": "pm10"}
UNITS = frozenset({"ug.m-3", "µg/m3", "ug/m3", "µg.m-3"})
#: The EEA's reporting time zone for hourly data.
UTC_OFFSET = np.timedelta64(1, "h")


def eea_kind(path: Path) -> str | None:
    """One of "network", "series", "damaged" (a Parquet file whose schema cannot be read) or None (not an
    EEA Parquet file), from the file's schema alone."""
    try:
        with path.open("rb") as f:
            if f.read(4) != b"PAR1":
                return None
    except OSError:
        return None
    try:
        columns = set(pq.read_schema(path).names)
    except (OSError, ValueError, pa.ArrowException):
        return "damaged"
    if columns.issuperset(NETWORK_COLUMNS):
        return "network"
    if columns.issuperset(SERIES_COLUMNS):
        return "series"
    return None


@dataclass
class Network:
    """Stations of the network inside a domain, and the sampling points of a sampling-point table."""

    table: pd.DataFrame  # code, type, area, latitude, longitude, measures_<species>
    sampling_points: dict[str, str] = field(default_factory=dict)  # sampling point id -> station code


def read_network(paths: Sequence[Path], spec: StoreSpec) -> Network:
    """The stations of the metadata files inside the store's domain (the first file naming a station wins)."""
    tables, points = [], {}
    for path in paths:
        raw = _read(path)
        codes = raw["Air.Quality.Station.EoI.Code"].astype(str)
        if "Sampling.Point.Id" in raw:
            points |= dict(zip(raw["Sampling.Point.Id"].astype(str), codes))
        table = pd.DataFrame({
            "code": codes, "type": raw["Station.Type"].astype(str), "area": raw["Station.Area"].astype(str),
            "latitude": pd.to_numeric(raw["Latitude"], errors="coerce"),
            "longitude": pd.to_numeric(raw["Longitude"], errors="coerce"),
        })  # fmt: skip
        pollutant = raw["Air.Pollutant"].astype(str) if "Air.Pollutant" in raw else None
        for sp in SPECIES_NAMES:
            table[f"measures_{sp}"] = True if pollutant is None else pollutant.map(NAMES).eq(sp)
        if table[["latitude", "longitude"]].isna().any().any():
            raise IngestError(path.name, "station metadata with a missing or non-numeric Latitude/Longitude")
        tables.append(table)
    every = pd.concat(tables, ignore_index=True)
    measures = every.groupby("code", sort=False)[[f"measures_{sp}" for sp in SPECIES_NAMES]].any()
    stations = every.drop_duplicates("code").set_index("code")
    stations[measures.columns] = measures
    stations = stations.reset_index()
    kept = inside(spec.domain, stations["latitude"].to_numpy(), stations["longitude"].to_numpy())
    return Network(stations[kept].sort_values("code").reset_index(drop=True), points)


def network_arrays(network: Network) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The observations group's station fields (layout.STATION_FIELDS) and (station, species) flags."""
    t = network.table
    fields = {
        "station_code": t["code"].to_numpy(), "station_type": t["type"].to_numpy(),
        "station_area": t["area"].to_numpy(), "station_latitude": t["latitude"].to_numpy(),
        "station_longitude": t["longitude"].to_numpy(),
        "station_altitude": np.full(len(t), np.nan, dtype=np.float32),
        "withheld": np.zeros(len(t), dtype=bool),
    }  # fmt: skip
    return fields, np.stack([t[f"measures_{sp}"].to_numpy() for sp in SPECIES_NAMES], axis=1)


@dataclass(frozen=True)
class Series:
    """One sampling point's hourly values: species, station code, valid times (UTC, end of hour), values."""

    species: str
    station: str
    times: np.ndarray  # datetime64[h]
    values: np.ndarray  # float32, NaN where not valid


def read_series(path: Path, station_of: dict[str, str], stations: set[str]) -> Series:
    """One e-reporting file, checked; IngestError naming the file and the problem otherwise."""
    raw = _read(path)
    if raw.empty:
        raise IngestError(path.name, "no rows")
    for column, problem in (("AggType", "averaging"), ("Unit", "unit"), ("Pollutant", "pollutant")):
        if raw[column].nunique() != 1:
            raise IngestError(
                path.name, f"more than one {problem} in one file: {sorted(map(str, raw[column].unique()))}"
            )
    agg, unit, pollutant = (
        str(raw["AggType"].iloc[0]),
        str(raw["Unit"].iloc[0]),
        int(raw["Pollutant"].iloc[0]),
    )
    if agg != "hour":
        raise IngestError(
            path.name, f"AggType {agg!r}: only hourly series (AggType hour) go into observations"
        )
    if unit not in UNITS:
        raise IngestError(path.name, f"unit {unit!r}: expected µg/m³ (ug.m-3)")
    if pollutant not in POLLUTANTS:
        raise IngestError(
            path.name, f"pollutant code {pollutant} is not one of O3 (7), NO2 (8), SO2 (1), PM10 (5)"
        )
    point = str(raw["Samplingpoint"].iloc[0]).rsplit("/", 1)[-1]
    code = station_of.get(point)
    if code is None and "stationcode" in raw:  # a column some tools add to the EEA's own
        code = str(raw["stationcode"].iloc[0]).strip()
    if code is None:
        raise IngestError(path.name, f"sampling point {point} is in no sampling-point table of this call")
    if code not in stations:
        raise IngestError(path.name, f"station {code} is not in the store's network (outside its domain?)")
    start = pd.to_datetime(raw["Start"]).to_numpy().astype("datetime64[h]")
    end = pd.to_datetime(raw["End"]).to_numpy().astype("datetime64[h]")
    hourly = end - start == np.timedelta64(1, "h")  # not so at a clock change in some files: dropped
    raw, times = raw[hourly], end[hourly] - UTC_OFFSET
    if len(np.unique(times)) != len(times):
        raise IngestError(path.name, "duplicated hours")
    values = np.array(pd.to_numeric(raw["Value"], errors="coerce"), dtype=np.float64)
    values[raw["Validity"].to_numpy() < 1] = np.nan
    if np.nanmin(values, initial=0.0) < -1.0:
        raise IngestError(path.name, f"negative concentrations down to {np.nanmin(values):.1f}")
    return Series(POLLUTANTS[pollutant], code, times, np.clip(values, 0.0, None).astype(np.float32))


@dataclass
class EeaReport:
    """What an EEA ingest did: series written, hours written, and one line per rejected file."""

    series: int = 0
    hours: int = 0
    errors: list[str] = field(default_factory=list)


def ingest_eea(store: str, network_paths: Sequence[Path], series_paths: Sequence[Path]) -> EeaReport:
    """Write the network (when the store has none) and the valid series into `observations`."""
    report = EeaReport()
    coord = StoreCoordinator(store)
    runs = coord.axis_values(FORECASTS)
    if not len(runs):
        raise IngestError(store, "the store holds no forecast run yet: observations are kept for its period")
    network = read_network(network_paths, coord.spec) if network_paths else None
    if network is not None:
        coord.ensure_observations(*network_arrays(network))
    if OBSERVATIONS not in coord.root:
        raise IngestError(store, "no station network in the store: give the EEA station metadata Parquet too")
    codes = [str(c) for c in coord.root[f"{OBSERVATIONS}/station_code"][:].tolist()]
    column = {code: k for k, code in enumerate(codes)}
    first, last = runs[0], runs[-1] + np.timedelta64(max(coord.spec.leads), "h")
    by_species: dict[str, list[Series]] = {}
    for path in series_paths:
        try:
            series = read_series(path, network.sampling_points if network else {}, set(codes))
        except IngestError as exc:
            report.errors.append(str(exc))
            continue
        keep = (series.times >= first) & (series.times <= last)
        by_species.setdefault(series.species, []).append(
            Series(series.species, series.station, series.times[keep], series.values[keep])
        )
        report.series += 1
    for sp, items in by_species.items():
        times = np.unique(np.concatenate([s.times for s in items]))
        if not len(times):
            continue
        positions = coord.ensure_axis(OBSERVATIONS, [t.astype("datetime64[s]").item() for t in times])
        array = coord.root[f"{OBSERVATIONS}/{sp}"]
        block = array.oindex[np.asarray(positions), :]
        row = {t: i for i, t in enumerate(times)}
        for s in items:
            block[[row[t] for t in s.times], column[s.station]] = s.values
        array.oindex[np.asarray(positions), :] = block
        held = [p for p, row_values in zip(positions, block) if np.isfinite(row_values).any()]
        if held:  # an hour without any valid value stays pending
            coord.mark(OBSERVATIONS, held, Status.COMPLETE, (SPECIES_NAMES.index(sp),))
        report.hours += len(held)
    return report


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise IngestError(path.name, f"not a readable Parquet file ({type(exc).__name__})") from None
