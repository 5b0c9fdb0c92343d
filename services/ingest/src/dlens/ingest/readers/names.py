"""CAMS vocabulary the readers recognise: variable names, model names, units, GRIB codes.

Sources (checked while writing the readers):
- ecmwf-projects/cads-adaptors,
  ``cads_adaptors/adaptors/cams_regional_fc/config/regional_fc_definitions.yaml`` (the ADS converter's own
  tables): NetCDF variable names ``o3_conc``/``no2_conc``/``so2_conc``/``pm10_conc`` in "µg/m3" (GRIB kg m-3
  × 1e9); model ``netcdf.name`` / ``name2`` written into ``source = "Data from <name> model"`` and
  ``history = "Model <name2> FORECAST"`` (ENSEMBLE, CHIMERE, EMEP, LOTOS-EUROS/LOTOS_EUROS, MATCH, MOCAGE,
  SILAM, EURAD-IM/EURAD, DEHM, GEM-AQ, MINNI, MONARCH); GRIB models by centre/subCentre and species by
  discipline 0, parameterCategory 20 (atmospheric chemistry), parameterNumber 0 (mass density, kg m-3) and
  constituentType (O3 0, NO2 5, SO2 8, PM10 40008), productDefinitionTemplateNumber 40.
- ECMWF Confluence "How to identify fields in European air-quality forecast grib files" (same centre/subCentre
  and constituentType tables).
- Reanalysis short names o3/no2/so2/pm10 and attributes: shared/data/cams-samples/SOURCES.md (real
  HARMONIA_AQ files) and ``cams.eaq.{vra,ira}.ENSa.<sp>.l0.YYYY-MM.nc`` users' code (dims time/lat/lon).
"""

from __future__ import annotations

import re

from dlens.common.species import ENSEMBLE_MEMBER, MEMBERS, SPECIES

#: store species -> NetCDF variable names, in order of preference, and CF standard names.
NETCDF_NAMES: dict[str, tuple[str, ...]] = {s.name: (s.forecast_variable, s.name) for s in SPECIES.values()}
STANDARD_NAMES: dict[str, str] = {
    "mass_concentration_of_ozone_in_air": "o3",
    "mass_concentration_of_nitrogen_dioxide_in_air": "no2",
    "mass_concentration_of_sulfur_dioxide_in_air": "so2",
    "mass_concentration_of_pm10_ambient_aerosol_in_air": "pm10",
}
#: GRIB2 constituentType (code table 4.230) of the store species.
GRIB_CONSTITUENTS: dict[int, str] = {0: "o3", 5: "no2", 8: "so2", 40008: "pm10"}
#: GRIB2 (centre, subCentre) of each CAMS regional model.
GRIB_MODELS: dict[tuple[int, int], str] = {
    (85, 2): ENSEMBLE_MEMBER, (85, 200): "chimere", (88, 0): "emep", (99, 0): "lotos", (82, 98): "match",
    (85, 1): "mocage", (86, 0): "silam", (85, 201): "euradim", (85, 203): "dehm", (85, 204): "gemaq",
    (85, 205): "minni", (85, 206): "monarch",
}  # fmt: skip

_MODEL_ALIASES: dict[str, str] = {m.upper(): m for m in MEMBERS} | {
    "ENSEMBLE": ENSEMBLE_MEMBER, "ENS": ENSEMBLE_MEMBER, "ENSEMBLEMEDIAN": ENSEMBLE_MEMBER,
    "MEDIAN": ENSEMBLE_MEMBER, "EURAD": "euradim", "EURADIM": "euradim", "GEMAQ": "gemaq",
    "LOTOSEUROS": "lotos", "LOTOS": "lotos",
}  # fmt: skip


def member_from_name(name: str) -> str | None:
    """Map a model name as CAMS writes it ("EURAD-IM", "LOTOS_EUROS", "Ensemble median") to a store member."""
    key = re.sub(r"[^A-Z0-9]", "", name.upper())
    return _MODEL_ALIASES.get(key)


_UG = {"µg/m3", "ug/m3", "µgm-3", "ugm-3", "µgm**-3", "ugm**-3", "µg/m^3", "ug/m^3", "µgm^-3", "microgram/m3",
       "microgramsperm3", "µg.m-3", "ug.m-3", "µg/m³", "ug/m³", "µgm⁻³", "ugm⁻³"}  # fmt: skip
_KG = {"kgm-3", "kgm**-3", "kg/m3", "kg/m^3", "kgm^-3", "kg.m-3", "kg/m³", "kgm⁻³"}


def unit_factor(units: str) -> float | None:
    """Factor to µg/m3 for a units string, or None when the units are not a mass concentration we know."""
    u = units.strip().lower().replace("μ", "µ").replace(" ", "")  # Greek mu -> micro sign
    if u in _UG:
        return 1.0
    if u in _KG:
        return 1e9
    return None
