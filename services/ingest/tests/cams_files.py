"""Factory for small CAMS-format test files (ADS forecast/analysis NetCDF, monthly reanalysis NetCDF, GRIB2).

Files follow the published layouts the readers document (`dlens.ingest.readers.detect`): ADS files are
written north→south with ``time`` in float "hours" from the run date, ``FORECAST``/``ANALYSIS`` period
attributes and ``source``/``history`` naming the model; reanalyses use ``time/lat/lon`` and short names.
Every option that can break a file is a keyword, so each defect is one call. `expected(...)` gives the values
the readers must return (store orientation: lead|time, level, latitude ascending, longitude ascending).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import netCDF4
import numpy as np

SPECIES_CONC = {"o3": "o3_conc", "no2": "no2_conc", "so2": "so2_conc", "pm10": "pm10_conc"}
#: A small crop of MACCGE01 around Milan: 5 rows x 8 columns of cell centres, ascending.
LAT = np.round(45.05 + 0.1 * np.arange(5), 2)
LON = np.round(8.95 + 0.1 * np.arange(8), 2)
#: A crop straddling the Greenwich meridian (for the [0, 360) longitude case).
LON_WRAP = np.round(-0.35 + 0.1 * np.arange(8), 2)
BASE = {"o3": 60.0, "no2": 20.0, "so2": 3.0, "pm10": 25.0}


def expected(species: str, n_time: int, levels: Sequence[int], lat=LAT, lon=LON) -> np.ndarray:
    """Deterministic positive values, float32, shape (time, level, lat, lon), store orientation."""
    t = np.arange(n_time)[:, None, None, None]
    k = np.arange(len(levels))[None, :, None, None]
    i = np.arange(len(lat))[None, None, :, None]
    j = np.arange(len(lon))[None, None, None, :]
    return (BASE[species] + 1.5 * t + 0.25 * k + 0.5 * i + 0.125 * j).astype(np.float32)


def _to_file_lon(lon: np.ndarray, lon360: bool) -> np.ndarray:
    """ADS order: ascending from the western edge, taken modulo 360 when `lon360`."""
    return np.mod(lon, 360.0) if lon360 else lon


def write_ads(
    path: Path,
    *,
    kind: str = "forecast",
    model: str | None = "CHIMERE",
    date: str = "20200101",
    period: str | None = None,
    steps: Sequence[float] | None = None,
    levels: Sequence[float] = (0.0,),
    species: Sequence[str] = ("o3", "no2"),
    variables: dict[str, str] | None = None,
    units: str = "µg/m3",
    lat: np.ndarray = LAT,
    lon: np.ndarray = LON,
    lon360: bool = False,
    packed: bool = False,
    fmt: str = "NETCDF3_CLASSIC",
    data: dict[str, np.ndarray] | None = None,
    kind_attrs: bool = True,
    time_long_name: bool = True,
    cf_time: bool = False,
) -> Path:
    """An ADS ``cams-europe-air-quality-forecasts`` NetCDF (type forecast or analysis) on a small crop.

    `steps` are the raw time values (hours from `date`; default 0..3 for a forecast, 0..23 for an analysis);
    `data` overrides species values (store orientation); `variables` renames species variables;
    `cf_time` writes the new-ADS style ``hours since`` time with ``forecast_reference_time``.
    """
    upper = kind.upper()
    steps = list(steps if steps is not None else (range(4) if kind == "forecast" else range(24)))
    period = period or (f"{date}+[0H_96H]" if kind == "forecast" else f"{date}+[0H_23H]")
    variables = variables or {sp: SPECIES_CONC[sp] for sp in species}
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.title = f"{'/'.join(s.upper() for s in species)} Air Pollutant {upper} at the Surface"
        nc.institution = "Data produced by Meteo France"
        if model is not None:
            nc.source = f"Data from {model} model"
            nc.history = f"Model {model} {upper}"
        if kind_attrs:
            nc.setncattr(upper, f"Europe, {period}")
            nc.summary = (
                f"{model} model hourly {upper} of O3 concentration at the Surface from {period} on Europe"
            )
        nc.project = "MACC-RAQ (http://macc-raq.gmes-atmosphere.eu)"
        nc.createDimension("longitude", len(lon))
        nc.createDimension("latitude", len(lat))
        nc.createDimension("level", len(levels))
        nc.createDimension("time", None)
        v = nc.createVariable("longitude", "f4", ("longitude",))
        v.long_name, v.units = "longitude", "degrees_east"
        v[:] = _to_file_lon(np.asarray(lon, dtype=np.float64), lon360)
        v = nc.createVariable("latitude", "f4", ("latitude",))
        v.long_name, v.units = "latitude", "degrees_north"
        v[:] = np.asarray(lat)[::-1]  # north -> south
        v = nc.createVariable("level", "f4", ("level",))
        v.long_name, v.units = "level", "m"
        v[:] = np.asarray(levels, dtype=np.float32)
        if cf_time:
            v = nc.createVariable("time", "f8", ("time",))
            v.standard_name, v.units = "time", f"hours since {date[:4]}-{date[4:6]}-{date[6:]} 00:00:00"
            if kind == "forecast":
                r = nc.createVariable("forecast_reference_time", "f8", ())
                r.units = v.units
                r.assignValue(0)
        else:
            v = nc.createVariable("time", "f4", ("time",))
            v.units = "hours"
            if time_long_name:
                v.long_name = f"{upper} time from {date}"
        v[:] = np.asarray(steps, dtype=np.float64)
        for sp, name in variables.items():
            values = (data or {}).get(sp)
            if values is None:
                values = expected(sp, len(steps), levels, lat, lon)
            file_values = np.asarray(values, dtype=np.float64)[:, :, ::-1, :]
            if packed:
                finite = file_values[np.isfinite(file_values)]
                lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
                scale = (hi - lo) / 60000 or 1.0
                var = nc.createVariable(
                    name, "i2", ("time", "level", "latitude", "longitude"), fill_value=-32767
                )
                var.scale_factor, var.add_offset = scale, (hi + lo) / 2
                var.missing_value = np.int16(-32767)
            else:
                var = nc.createVariable(
                    name, "f4", ("time", "level", "latitude", "longitude"), fill_value=-999.0
                )
            var.species, var.units, var.value = sp.upper(), units, "hourly values"
            var[:] = np.ma.masked_invalid(file_values)
    return path


def write_reanalysis(
    path: Path,
    *,
    month: str = "2020-03",
    hours: Sequence[int] | None = None,
    species: Sequence[str] = ("o3", "no2", "so2", "pm10"),
    lat: np.ndarray = LAT,
    lon: np.ndarray = LON,
    units: str = "µg/m3",
    stream: str = "interim",
    data: dict[str, np.ndarray] | None = None,
    source: str = "Ensemble median",
) -> Path:
    """A monthly ``cams-europe-air-quality-reanalyses`` file (``cams.eaq.ira.ENSa.<sp>.l0.YYYY-MM.nc`` style,
    all species in one file): dims time/lat/lon, latitude ascending, ``hours since`` the 1st of the month."""
    hours = list(hours if hours is not None else range(48))
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.7"
        nc.Title = f"CAMS European air quality {stream} reanalysis"
        nc.Provider = "COPERNICUS European air quality service"
        nc.Production = "COPERNICUS Atmosphere Monitoring Service"
        nc.createDimension("time", len(hours))
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        t = nc.createVariable("time", "i8", ("time",))
        t.standard_name, t.long_name = "time", "valid time"
        t.units, t.calendar = f"hours since {month}-01 00:00:00", "proleptic_gregorian"
        t[:] = np.asarray(hours, dtype=np.int64)
        v = nc.createVariable("lat", "f8", ("lat",))
        v.standard_name, v.units = "latitude", "degrees_north"
        v[:] = lat
        v = nc.createVariable("lon", "f8", ("lon",))
        v.standard_name, v.units = "longitude", "degrees_east"
        v[:] = lon
        for sp in species:
            values = (data or {}).get(sp)
            if values is None:
                values = expected(sp, len(hours), (0,), lat, lon)
            var = nc.createVariable(sp, "f4", ("time", "lat", "lon"), fill_value=np.float32(np.nan))
            var.units = units
            var.source = f"mass concentration of {sp} at 0 meters above the surface from {source}"
            var[:] = np.asarray(values)[:, 0]
    return path


def write_grib(
    path: Path,
    *,
    centre: int = 85,
    sub_centre: int = 200,
    date: int = 20200101,
    steps: Sequence[int] = (0, 1, 2),
    species: Sequence[str] = ("o3", "no2"),
    parameter_number: int = 0,
    lat: np.ndarray = LAT,
    lon: np.ndarray = LON,
    processed: int = 1,
) -> Path:
    """A CAMS regional GRIB2 file (Météo-France encoding: mass density in kg m-3, template 4.40), built from
    the ecCodes sample "regular_ll_sfc_grib2". Latitude north→south, longitude in [0, 360)."""
    import eccodes

    constituent = {"o3": 0, "no2": 5, "so2": 8, "pm10": 40008}
    lon_file = np.mod(np.asarray(lon, dtype=np.float64), 360.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for sp in species:
            values = expected(sp, len(steps), (0,), lat, lon)
            for it, step in enumerate(steps):
                h = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
                try:
                    for key, value in (
                        ("centre", centre), ("subCentre", sub_centre),
                        ("productDefinitionTemplateNumber", 40),
                        ("discipline", 0), ("parameterCategory", 20), ("parameterNumber", parameter_number),
                        ("constituentType", constituent[sp]), ("typeOfFirstFixedSurface", 103),
                        ("scaleFactorOfFirstFixedSurface", 0), ("scaledValueOfFirstFixedSurface", 0),
                        ("typeOfSecondFixedSurface", 255), ("typeOfProcessedData", processed),
                        ("dataDate", date), ("dataTime", 0), ("stepUnits", 1), ("forecastTime", step),
                        ("Ni", len(lon)), ("Nj", len(lat)), ("jScansPositively", 0),
                        ("latitudeOfFirstGridPointInDegrees", float(lat[-1])),
                        ("latitudeOfLastGridPointInDegrees", float(lat[0])),
                        ("longitudeOfFirstGridPointInDegrees", float(lon_file[0])),
                        ("longitudeOfLastGridPointInDegrees", float(lon_file[-1])),
                        ("iDirectionIncrementInDegrees", 0.1), ("jDirectionIncrementInDegrees", 0.1),
                    ):  # fmt: skip
                        eccodes.codes_set(h, key, value)
                    field = values[it, 0, ::-1, :].astype(np.float64) * 1e-9  # µg/m3 -> kg m-3, north first
                    eccodes.codes_set_values(h, field.ravel())
                    eccodes.codes_write(h, f)
                finally:
                    eccodes.codes_release(h)
    return path
