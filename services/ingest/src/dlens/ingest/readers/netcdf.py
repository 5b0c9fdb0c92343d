"""Low-level NetCDF access: recognise the format from its first bytes and open lazily, CF-decoded.

Packed values (int16 + ``scale_factor``/``add_offset``, as the ADS ``grib_to_netcdf`` converter writes them)
and both ``_FillValue`` conventions seen in real CAMS files (NaN, and -999 with ``missing_value``) are decoded
by xarray's CF mask-and-scale; times are left numeric (decoded by `times.py`), so nothing is guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import xarray as xr

from .classic import check_size
from .errors import Problem, one_line

Format = Literal["netcdf", "grib"]

_NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")


def sniff(path: Path) -> Format | None:
    """ "netcdf" or "grib" from the file's first bytes, or None."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_NETCDF_MAGIC):
        return "netcdf"
    if head.startswith(b"GRIB"):
        return "grib"
    return None


def open_raw(path: Path) -> xr.Dataset:
    """Open a NetCDF file lazily with masks and packing decoded, numeric times, no caching of arrays."""
    check_size(path)
    try:
        return xr.open_dataset(
            path, engine="netcdf4", mask_and_scale=True, decode_times=False, decode_timedelta=False,
            decode_coords=False, cache=False,
        )  # fmt: skip
    except Exception as exc:  # netCDF4 raises OSError/RuntimeError/ValueError for corrupt files
        raise Problem(f"cannot open as NetCDF (truncated or corrupt file?): {one_line(exc, 120)}") from None
