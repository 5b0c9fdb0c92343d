"""Truncation check for classic NetCDF (CDF-1/2/5) files.

netCDF-C reads past the end of a truncated classic file without an error (the missing bytes come back as
zeros or fill values), so the size the header promises is computed here from the header itself, following the
NetCDF classic format specification (numrecs, dim_list, gatt_list, var_list with vsize and begin).
"""

from __future__ import annotations

import struct
from pathlib import Path

from .errors import Problem

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
_STREAMING = 0xFFFFFFFF


class _Reader:
    def __init__(self, data: bytes, version: int) -> None:
        self.data, self.pos, self.version = data, 4, version

    def int(self, size: int) -> int:
        if self.pos + size > len(self.data):
            raise Problem("truncated NetCDF header")
        (value,) = struct.unpack(">Q" if size == 8 else ">I", self.data[self.pos : self.pos + size])
        self.pos += size
        return value

    def count(self) -> int:  # NON_NEG: 8 bytes in CDF-5
        return self.int(8 if self.version == 5 else 4)

    def skip(self, n: int) -> None:
        self.pos += (n + 3) // 4 * 4

    def name(self) -> None:
        self.skip(self.count())

    def atts(self) -> None:
        self.int(4)  # tag (NC_ATTRIBUTE or ABSENT)
        for _ in range(self.count()):
            self.name()
            nc_type = self.int(4)
            self.skip(self.count() * _TYPE_SIZES.get(nc_type, 1))


def expected_size(path: Path) -> int | None:
    """Bytes a classic NetCDF file must have, or None when it is not a classic file."""
    with open(path, "rb") as f:
        head = f.read(4)
        if head[:3] != b"CDF" or head[3] not in (1, 2, 5):
            return None
        data = head + f.read(1 << 22)  # headers of CAMS files are a few kB
    r = _Reader(data, head[3])
    numrecs = r.count()
    r.int(4)  # dim tag
    dims = []
    for _ in range(r.count()):
        r.name()
        dims.append(r.count())
    r.atts()
    r.int(4)  # var tag
    ends, recsize, record_vars = [0], 0, []
    for _ in range(r.count()):
        r.name()
        dimids = [r.count() for _ in range(r.count())]
        r.atts()
        r.int(4)  # nc_type
        vsize = r.count() if r.version == 5 else r.int(4)
        begin = r.int(4 if r.version == 1 else 8)
        if dimids and dims[dimids[0]] == 0:
            recsize += vsize
            record_vars.append((begin, vsize))
        else:
            ends.append(begin + vsize)
    if record_vars and numrecs not in (0, _STREAMING):
        if len(record_vars) == 1:  # a single record variable is not padded
            recsize = record_vars[0][1]
        ends += [begin + (numrecs - 1) * recsize + vsize for begin, vsize in record_vars]
    return max(ends)


def check_size(path: Path) -> None:
    try:
        need = expected_size(path)
    except (IndexError, KeyError, struct.error):
        raise Problem("corrupt NetCDF header") from None
    have = path.stat().st_size
    if need is not None and have < need:
        raise Problem(f"truncated NetCDF file ({have} bytes, the header needs {need})")
