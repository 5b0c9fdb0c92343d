"""CAMS regional GRIB2 (ADS GRIB downloads and Météo-France ``PMACC<MODEL>/YYYY_MM_DD_LT_LVL_SPECIES.grib``).

Fields are recognised from GRIB keys, as the ADS converter does (cads-adaptors
``regional_fc_definitions.yaml``; ECMWF Confluence "How to identify fields in European air-quality forecast
grib files"): discipline 0, parameterCategory 20, parameterNumber 0 (mass density, kg m-3, "mdens"),
constituentType 0/5/8/40008 for O3/NO2/SO2/PM10, model from centre/subCentre. ecCodes 2.50 names these fields
"unknown", so cfgrib is asked for one constituent at a time with ``filter_by_keys``; its lazy arrays read one
message per field on demand. The model comes from the directory name ``PMACC<MODEL>`` only when
centre/subCentre are not a known CAMS model.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from dlens.common.species import MEMBERS

from . import times as T
from .coords import orient
from .detect import MAX_LEAD
from .errors import Problem, one_line
from .layout import Layout, SpeciesSource
from .lazy import Axis
from .names import GRIB_CONSTITUENTS, GRIB_MODELS, member_from_name

_INT_KEYS = ("edition", "centre", "subCentre", "discipline", "parameterCategory", "parameterNumber",
             "constituentType", "typeOfProcessedData", "dataDate", "dataTime", "typeOfFirstFixedSurface",
             "level")  # fmt: skip
_OTHER_KEYS = (("shortName", str), ("gridType", str), ("iDirectionIncrementInDegrees", float))


def _eccodes():
    try:
        import eccodes
    except (ImportError, RuntimeError) as exc:  # the Python package loads libeccodes at import
        raise Problem(
            f"GRIB support unavailable (ecCodes library not loadable: {one_line(exc, 80)})"
        ) from None
    return eccodes


def scan(path: Path) -> list[dict]:
    """Header keys of every GRIB message (no data values are decoded)."""
    ec = _eccodes()
    msgs: list[dict] = []
    with open(path, "rb") as f:
        while True:
            try:
                h = ec.codes_grib_new_from_file(f)
            except Exception as exc:
                raise Problem(f"corrupt or truncated GRIB: {one_line(exc, 100)}") from None
            if h is None:
                break
            try:
                m = {}
                for k, kt in ((k, int) for k in _INT_KEYS):
                    m[k] = _get(ec, h, k, kt)
                for k, kt in _OTHER_KEYS:
                    m[k] = _get(ec, h, k, kt)
                try:
                    ec.codes_set(h, "stepUnits", 1)  # steps in hours
                    m["step"] = ec.codes_get(h, "endStep", ktype=int)
                except Exception:
                    m["step"] = 0
                msgs.append(m)
            finally:
                ec.codes_release(h)
    if not msgs:
        raise Problem("no GRIB message could be read")
    return msgs


def _get(ec, h, key: str, ktype: type):
    try:
        return ec.codes_get(h, key, ktype=ktype)
    except Exception:
        return None


def _species_of(m: dict) -> str | None:
    if m["edition"] == 2 and m["discipline"] == 0 and m["parameterCategory"] == 20:
        return GRIB_CONSTITUENTS.get(m["constituentType"])
    return None


def _member(msgs: list[dict], source: str) -> str:
    models = {GRIB_MODELS.get((m["centre"], m["subCentre"])) for m in msgs}
    if len(models) > 1:
        raise Problem(f"fields from several models in one file ({', '.join(sorted(map(str, models)))})")
    member = models.pop()
    if member is not None:
        return member
    for part in reversed(re.split(r"[/\\:]", source)[:-1]):
        m = re.fullmatch(r"PMACC[_-]?(.+)", part, re.I)
        if m:
            found = member_from_name(m.group(1))
            if found is None:
                raise Problem(f"unknown member/model {m.group(1)!r} in directory {part!r}")
            return found
    c = msgs[0]
    raise Problem(
        f"unknown member/model: centre {c['centre']} subCentre {c['subCentre']} is not a CAMS regional model "
        f"({', '.join(MEMBERS)}, ensemble) and no PMACC<MODEL> directory names one"
    )


def describe(path: Path, source: str) -> Layout:
    msgs = scan(path)
    aq = [m for m in msgs if _species_of(m) is not None]
    if not aq:
        names = ", ".join(sorted({str(m["shortName"]) for m in msgs}))
        inc = {m["iDirectionIncrementInDegrees"] for m in msgs}
        grid = ", ".join(f"{i:g}°" for i in inc if isinstance(i, int | float)) or "unknown"
        raise Problem(
            f"not CAMS regional air quality: no O3/NO2/SO2/PM10 mass-density field among {len(msgs)} GRIB "
            f"messages (found {names}; centre {msgs[0]['centre']}, {grid} grid)"
        )
    wrong = [m for m in aq if m["parameterNumber"] != 0]
    if wrong:
        m = wrong[0]
        raise Problem(
            f"wrong units for {_species_of(m)}: GRIB parameterNumber {m['parameterNumber']} in category 20 "
            "is not mass density (kg m-3)"
        )
    member = _member(aq, source)
    kinds = {m["typeOfProcessedData"] for m in aq}
    if kinds <= {1}:
        kind = "forecast"
    elif kinds <= {0}:
        kind = "analysis"
    else:
        kind = "forecast" if any(m["step"] for m in aq) else "analysis"
    runs = {(m["dataDate"], m["dataTime"]) for m in aq}
    keyset = Counter((_species_of(m), m["dataDate"], m["dataTime"], m["step"], m["level"]) for m in aq)
    dup = [k for k, n in keyset.items() if n > 1]
    if dup:
        sp, d, t, s, lv = dup[0]
        raise Problem(f"duplicated times: {sp} field {d} {t:04d} +{s} h at level {lv} appears twice")
    if kind == "forecast" and len(runs) > 1:
        raise Problem(f"forecast file holds several runs ({len(runs)}): one run per file is needed")

    sources: dict[str, SpeciesSource] = {}
    layout_args = None
    for ctype, sp in GRIB_CONSTITUENTS.items():
        if not any(_species_of(m) == sp for m in aq):
            continue
        da = _open_species(path, ctype)
        args, axes = _axes(da, kind)
        if layout_args is None:
            layout_args = args
        elif not (np.array_equal(args[1], layout_args[1]) and np.array_equal(args[2], layout_args[2])
                  and np.array_equal(args[3], layout_args[3])):  # fmt: skip
            raise Problem(f"{sp} fields do not cover the same times/levels as the other species")
        sources[sp] = SpeciesSource(da, 1e9, f"GRIB constituentType {ctype}", axes)
    run, leads, stamps, levels, lat, lon = layout_args
    return Layout(kind, member, run, leads, stamps, levels, lat, lon, sources)


def _open_species(path: Path, ctype: int) -> xr.DataArray:
    filt = {"discipline": 0, "parameterCategory": 20, "parameterNumber": 0, "constituentType": ctype}
    try:
        ds = xr.open_dataset(
            path, engine="cfgrib", cache=False, decode_timedelta=True,
            backend_kwargs={"indexpath": "", "filter_by_keys": filt, "read_keys": list(filt)},
        )  # fmt: skip
    except Exception as exc:
        raise Problem(f"cfgrib cannot read the fields: {one_line(exc, 120)}") from None
    if len(ds.data_vars) != 1:
        raise Problem(f"cfgrib found {len(ds.data_vars)} variables for one constituent")
    return ds[next(iter(ds.data_vars))]


def _axes(da: xr.DataArray, kind: str):
    lat, ilat, lon, ilon = orient(da["latitude"].values, da["longitude"].values)
    level_dim = next((d for d in da.dims if d in ("heightAboveGround", "level", "surface")), None)
    lev_coord = next((c for c in ("heightAboveGround", "level") if c in da.coords), None)
    levels = (
        np.round(np.atleast_1d(da[lev_coord].values)).astype(np.int64) if lev_coord else np.zeros(1, np.int64)
    )
    ilev = np.argsort(levels)
    tdims = [d for d in da.dims if d not in ("latitude", "longitude", level_dim)]
    if len(tdims) > 1:
        raise Problem(f"GRIB fields vary along {tdims}: one run (forecast) or one step (analysis) per file")
    tdim = tdims[0] if tdims else None
    empty_t = np.array([], dtype="datetime64[ns]")
    if kind == "forecast":
        run = pd.Timestamp(np.atleast_1d(da["time"].values)[0])
        hours = np.atleast_1d(da["step"].values) / np.timedelta64(1, "h")
        leads = T.whole_hours(np.asarray(hours, dtype=np.float64), "lead time")
        bad = leads[(leads < 0) | (leads > MAX_LEAD)]
        if bad.size:
            raise Problem(f"lead time {bad[0]} h is outside 0..{MAX_LEAD} h")
        order = np.argsort(leads)
        args = (run, leads[order], empty_t, levels[ilev], lat, lon)
    else:
        stamps = np.atleast_1d(da["valid_time"].values).astype("datetime64[ns]")
        order = np.argsort(stamps)
        args = (None, np.array([], dtype=np.int64), stamps[order], levels[ilev], lat, lon)
    axes = [Axis(tdim, order), Axis(level_dim, ilev), Axis("latitude", ilat), Axis("longitude", ilon)]
    return args, axes
