"""Detect what a CAMS NetCDF file holds, from its content and attributes only (never its name).

Format facts relied on (see also `names.py`):
- ADS ``cams-europe-air-quality-forecasts`` NetCDF (legacy ADS and the new ADS, whose converter
  ``convert_grib_to_netcdf.py`` in ecmwf-projects/cads-adaptors rewrites the Météo-France layout): dims
  ``time``/``level``/``latitude``/``longitude``; latitude north→south (first GRIB point 71.95); longitude
  in [0, 360) (``lons - floor(lons/360)*360``); ``level`` float metres; ``time`` float ``units = "hours"``
  from the first requested date, long_name ``"FORECAST time from 20211222"`` (or ``ANALYSIS``); variables
  ``<sp>_conc(time, level, latitude, longitude)`` in "µg/m3", ``_FillValue = -999``; global attributes
  ``title``, ``institution = "Data produced by <inst>"``, ``source = "Data from <MODEL> model"``,
  ``history = "Model <MODEL> FORECAST"``, ``FORECAST = "Europe, 20211222+[0H_96H]"`` or
  ``ANALYSIS = "Europe, 20200101-20200102+[0H_23H]"``, ``summary``, ``project``. A real ENSEMBLE header with
  these values is printed in the Galaxy Training Network CAMS PM2.5 tutorial (CAMS-PM2_5-20211222.netcdf).
- CF variants (time ``"hours since …"``, ``valid_time``, ``forecast_period``, ``forecast_reference_time``)
  are read too, as the new ADS converters write CF time coordinates for other datasets.
- ``cams-europe-air-quality-reanalyses``: monthly ``cams.eaq.{vra,ira}.ENSa.<sp>.l<level>.YYYY-MM.nc``
  with dims ``time``/``lat``/``lon``; variables ``o3``/``no2``/``so2``/``pm10`` in "µg/m3" with ``source``
  "… at 0 meters above the surface from Ensemble median"; global ``Title`` "CAMS European air quality
  interim|validated reanalysis" (HARMONIA_AQ samples, SOURCES.md): which of the two (`detect_stream`)
  decides the store group the file goes to (`reanalysis/interim` or `reanalysis/validated`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

from dlens.common.species import ENSEMBLE_MEMBER, LEVELS_M, MEMBERS, SPECIES_NAMES

from . import times as T
from .coords import orient
from .errors import Problem
from .layout import Layout, SpeciesSource
from .lazy import Axis
from .names import NETCDF_NAMES, STANDARD_NAMES, member_from_name, unit_factor

MAX_LEAD = 96
_LAT_NAMES, _LON_NAMES = ("latitude", "lat"), ("longitude", "lon")
_LEVEL_NAMES = ("level", "height", "lev")
_TIME_NAMES = ("time", "valid_time", "forecast_period", "step")


def _attrs(ds: xr.Dataset) -> dict[str, str]:
    return {k.lower(): str(v) for k, v in ds.attrs.items()}


def detect_kind(ds: xr.Dataset) -> str:
    """forecast / analysis / reanalysis from the attributes."""
    a = _attrs(ds)
    if "forecast" in a and "analysis" in a:
        raise Problem("both FORECAST and ANALYSIS attributes are present")
    if "forecast" in a:
        return "forecast"
    if "analysis" in a:
        return "analysis"
    text = " ".join(a.get(k, "") for k in ("title", "history", "summary"))
    if re.search(r"re-?analys[ie]s", text, re.I):
        return "reanalysis"
    found = {w.lower() for w in re.findall(r"\b(FORECAST|ANALYSIS)\b", text, re.I)}
    if len(found) == 1:
        return found.pop()
    for name in _TIME_NAMES:
        if name in ds.variables:
            ln = str(ds[name].attrs.get("long_name", ""))
            m = re.match(r"\s*(FORECAST|ANALYSIS)\s+time\s+from", ln, re.I)
            if m:
                return m.group(1).lower()
    if "forecast_reference_time" in ds.variables and "forecast_period" in ds.variables:
        return "forecast"
    raise Problem(
        "cannot tell forecast, analysis or reanalysis: no FORECAST/ANALYSIS attribute, no title, "
        "history or time long_name naming one"
    )


def detect_stream(ds: xr.Dataset) -> str:
    """interim / validated for a reanalysis, from the title (or history, summary) that names it."""
    a = _attrs(ds)
    text = " ".join(a.get(k, "") for k in ("title", "history", "summary"))
    found = {w.lower() for w in re.findall(r"\b(interim|validated)\b", text, re.I)}
    if len(found) != 1:
        named = "both" if found else "neither"
        raise Problem(
            f"cannot tell an interim from a validated reanalysis: the title, history and summary name {named}"
        )
    return found.pop()


def find_species(ds: xr.Dataset) -> dict[str, str]:
    """store species -> variable name (other species such as co, pm2p5, nh3 are ignored)."""
    found: dict[str, str] = {}
    for sp in SPECIES_NAMES:
        for name in NETCDF_NAMES[sp]:
            if name in ds.data_vars:
                found[sp] = name
                break
    for name, var in ds.data_vars.items():
        sp = STANDARD_NAMES.get(str(var.attrs.get("standard_name", "")))
        if sp and sp not in found:
            found[sp] = str(name)
    if not found:
        names = ", ".join(map(str, list(ds.data_vars)[:8])) or "none"
        raise Problem(f"unknown species: no O3/NO2/SO2/PM10 variable (variables: {names})")
    return {sp: found[sp] for sp in SPECIES_NAMES if sp in found}


def detect_member(ds: xr.Dataset, kind: str, species_vars: list[str]) -> str:
    a = _attrs(ds)
    names: list[str] = []
    m = re.search(r"from\s+(.+?)\s+model", a.get("source", ""), re.I)
    if m:
        names.append(m.group(1))
    m = re.search(r"Model\s+(\S.*?)\s+(FORECAST|ANALYSIS)", a.get("history", ""), re.I)
    if m:
        names.append(m.group(1))
    for key in ("model", "label"):
        if key in a:
            names.append(a[key])
    for var in species_vars:
        src = str(ds[var].attrs.get("source", ""))
        m = re.search(r"\bfrom\s+(.+?)(?:\s+model)?\s*$", src, re.I)
        if m:
            names.append(m.group(1))
    if not names:
        if kind == "reanalysis":
            return ENSEMBLE_MEMBER  # ADS reanalyses are the ensemble median unless a model is named
        raise Problem("unknown member: no model named in the attributes (source, history)")
    members = set()
    for name in names:
        member = member_from_name(name)
        if member is None:
            raise Problem(f"unknown member/model {name!r} (expected one of {', '.join(MEMBERS)} or ENSEMBLE)")
        members.add(member)
    if len(members) > 1:
        raise Problem(f"the attributes name several models: {', '.join(sorted(members))}")
    return members.pop()


def _coord(ds: xr.Dataset, names: tuple[str, ...], what: str) -> xr.DataArray:
    for n in names:
        if n in ds.variables:
            return ds[n]
    raise Problem(f"no {what} coordinate")


def _time_source(ds: xr.Dataset, dim: str | None) -> xr.DataArray | None:
    if dim is not None:
        if dim in ds.variables:
            return ds[dim]
        for n in _TIME_NAMES:
            if n in ds.variables and ds[n].dims == (dim,):
                return ds[n]
        raise Problem(f"dimension {dim!r} has no time coordinate")
    for n in _TIME_NAMES:
        if n in ds.variables and ds[n].ndim == 0:
            return ds[n]
    return None


def _levels(ds: xr.Dataset, dim: str | None, var: xr.DataArray) -> np.ndarray:
    if dim is not None and dim in ds.variables:
        values = np.asarray(ds[dim].values, dtype=np.float64).ravel()
    else:
        scalar = next((ds[n] for n in _LEVEL_NAMES if n in ds.variables and ds[n].ndim == 0), None)
        if scalar is not None:
            values = np.atleast_1d(np.asarray(scalar.values, dtype=np.float64))
        else:
            m = re.search(
                r"at\s+(\d+(?:\.\d+)?)\s*m(?:eters?|etres?)?\b", str(var.attrs.get("source", "")), re.I
            )
            values = np.array([float(m.group(1)) if m else 0.0])
    levels = np.round(values).astype(np.int64)
    bad = [v for v, lv in zip(values, levels, strict=True) if abs(v - lv) > 1e-3 or lv not in LEVELS_M]
    if bad:
        raise Problem(f"level {bad[0]:g} m is not a CAMS level ({', '.join(map(str, LEVELS_M))})")
    T.check_unique(levels, "levels", lambda v: f"{v} m")
    return levels


def describe(ds: xr.Dataset) -> Layout:
    """The Layout of a CAMS NetCDF file, or Problem with what is wrong."""
    lat_v, lon_v = _coord(ds, _LAT_NAMES, "latitude"), _coord(ds, _LON_NAMES, "longitude")
    lat, ilat, lon, ilon = orient(lat_v.values, lon_v.values)
    kind = detect_kind(ds)
    species = find_species(ds)
    first = ds[next(iter(species.values()))]
    lat_dim = lat_v.dims[0] if lat_v.ndim == 1 else None
    lon_dim = lon_v.dims[0] if lon_v.ndim == 1 else None
    level_dim = next((d for d in first.dims if d in _LEVEL_NAMES), None)
    other = [d for d in first.dims if d not in (lat_dim, lon_dim, level_dim)]
    if len(other) > 1:
        raise Problem(f"{first.name}: more than one time-like dimension {other}")
    time_dim = other[0] if other else None
    for name in species.values():
        if set(ds[name].dims) != set(first.dims):
            raise Problem(f"{name} has dims {ds[name].dims}, unlike {first.name} {first.dims}")
        if (lat_dim and lat_dim not in ds[name].dims) or (lon_dim and lon_dim not in ds[name].dims):
            raise Problem(f"{name} is not on the latitude/longitude grid")
    levels = _levels(ds, level_dim, first)
    ilev = np.argsort(levels)
    member = detect_member(ds, kind, list(species.values()))
    tvar = _time_source(ds, time_dim)
    if tvar is None:
        raise Problem("no time coordinate")
    run, leads, stamps, itime = _time_axis(ds, kind, tvar)

    sources: dict[str, SpeciesSource] = {}
    for sp, name in species.items():
        var = ds[name]
        units = str(var.attrs.get("units", "")).strip()
        factor = unit_factor(units)
        if factor is None:
            shown = units or "none"
            raise Problem(f"wrong units {shown!r} for {name} (expected µg/m3, or kg m-3 to convert)")
        axes = [
            Axis(time_dim, itime),
            Axis(level_dim, ilev if level_dim else np.zeros(1, dtype=np.int64)),
            Axis(lat_dim, ilat),
            Axis(lon_dim, ilon),
        ]
        sources[sp] = SpeciesSource(var, factor, name, axes)
    stream = detect_stream(ds) if kind == "reanalysis" else None
    return Layout(kind, member, run, leads, stamps, levels[ilev], lat, lon, sources, stream)


def _time_axis(ds: xr.Dataset, kind: str, tvar: xr.DataArray):
    """(run, leads, times, raw index of each sorted position) with period and duplicate checks."""
    form, values = T.decode(tvar.values, str(tvar.attrs.get("units", "")), f"time coordinate {tvar.name!r}")
    a = _attrs(ds)
    period = T.parse_period(a[kind]) if kind in a else None
    named = T.date_from_long_name(str(tvar.attrs.get("long_name", "")))
    if period and named is not None and named != period.first:
        raise Problem(f"time long_name date {named:%Y%m%d} disagrees with {kind.upper()} = {period.text!r}")
    base = named if named is not None else (period.first if period else None)
    empty_t = np.array([], dtype="datetime64[ns]")

    if kind == "forecast":
        if period and period.last != period.first:
            raise Problem(f"forecast spans several run dates ({period.text}): one run per file is needed")
        run = None
        if "forecast_reference_time" in ds.variables:
            frt = ds["forecast_reference_time"]
            f2, v2 = T.decode(frt.values, str(frt.attrs.get("units", "")), "forecast_reference_time")
            if f2 != "datetime" or np.unique(v2).size != 1:
                raise Problem("forecast_reference_time must be one date (one run per file)")
            run = pd.Timestamp(v2[0])
        run = run if run is not None else base
        if form == "offset":
            if run is None:
                raise Problem("cannot tell the forecast run date (no FORECAST attribute or time long_name)")
            hours = values
        else:
            if run is None:
                raise Problem(
                    "cannot tell the forecast run date (no forecast_reference_time or FORECAST attribute)"
                )
            hours = (values - run.to_datetime64()) / np.timedelta64(1, "h")
        leads = T.whole_hours(hours, "lead time")
        T.check_unique(leads, "lead times", lambda v: f"{v} h")
        bad = leads[(leads < 0) | (leads > MAX_LEAD)]
        if bad.size:
            raise Problem(f"lead time {bad[0]} h is outside 0..{MAX_LEAD} h")
        if period:
            bad = leads[(leads < period.h0) | (leads > period.h1)]
            if bad.size:
                raise Problem(f"lead time {bad[0]} h is outside the period FORECAST = {period.text!r}")
        order = np.argsort(leads, kind="stable")
        return run, leads[order], empty_t, order

    if form == "offset":
        if base is None:
            raise Problem("cannot tell the analysis date (no ANALYSIS attribute or time long_name)")
        hours = T.whole_hours(values, "time")
        stamps = base.to_datetime64().astype("datetime64[ns]") + (hours * 3600 * 10**9).astype(
            "timedelta64[ns]"
        )
    else:
        stamps = values.astype("datetime64[ns]")
    T.check_unique(stamps, "times", T.iso)
    if kind == "analysis" and period:
        lo = period.first + pd.Timedelta(hours=period.h0)
        hi = period.last + pd.Timedelta(hours=period.h1)
        hod = pd.DatetimeIndex(stamps).hour
        bad = stamps[(stamps < lo.to_datetime64()) | (stamps > hi.to_datetime64())
                     | (hod < period.h0) | (hod > period.h1)]  # fmt: skip
        if bad.size:
            raise Problem(f"time {T.iso(bad[0])} is outside the period ANALYSIS = {period.text!r}")
    if kind == "reanalysis":
        _check_reanalysis_period(stamps, T.reference_of(str(tvar.attrs.get("units", ""))))
    order = np.argsort(stamps, kind="stable")
    return None, np.array([], dtype=np.int64), stamps[order], order


def _check_reanalysis_period(stamps: np.ndarray, ref: pd.Timestamp | None) -> None:
    """Monthly ADS files: every time in the month of the time reference (or of the first time). A file that
    spans more months is accepted only as a complete hourly calendar year (merged series such as the
    HARMONIA_AQ files)."""
    idx = pd.DatetimeIndex(np.sort(stamps))
    start = (ref if ref is not None else idx[0]).to_period("M")
    if (idx.to_period("M") == start).all():
        return
    year = idx[0].year
    full = pd.date_range(f"{year}-01-01", f"{year}-12-31 23:00", freq="h")
    if idx.size == full.size and (idx == full).all():
        return
    outside = idx[idx.to_period("M") != start]
    raise Problem(
        f"time {outside[0]:%Y-%m-%dT%H:%M} is outside the month {start} of this monthly reanalysis "
        "(and the file is not a complete hourly year)"
    )
