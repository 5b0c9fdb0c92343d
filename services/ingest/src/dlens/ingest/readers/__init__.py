"""CAMS file readers: detect, validate and normalise ADS NetCDF, reanalyses, GRIB and zips of them.

Modules: `errors` (IngestError), `model` (CamsFile, check_on_grid), `netcdf` (format sniffing, lazy CF-decoded
open), `times` (time axes and periods), `coords` (grid checks, orientation), `detect` (NetCDF kind/member/
species/axes), `grib` (GRIB via cfgrib/ecCodes), `lazy` + `layout` (the lazy normalised dataset), `validate`
(full value checks), `zips` (archive expansion), `api` (inspect_files, open_normalised).
"""

from .api import inspect_files, open_normalised
from .errors import IngestError
from .model import CamsFile, check_on_grid

__all__ = ["CamsFile", "IngestError", "check_on_grid", "inspect_files", "open_normalised"]
