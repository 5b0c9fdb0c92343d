"""Land or sea at any point of a lat/lon box, offline, reading only the rows of the 1-km mask it needs.

The `global-land-mask` wheel ships a global 1/120° land mask (21600 x 43200 booleans, 933 MB once
decompressed). Importing its module loads all of it; this reader streams the compressed file
instead and keeps only the latitude rows of the box while it answers (218 MB for the whole CAMS
grid, a few MB for the demo domain); callers cache what they derive from it.
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

# Located, not imported: importing `global_land_mask` would load the whole mask.
_PACKAGE = importlib.util.find_spec("global_land_mask").submodule_search_locations[0]
_FILE = Path(_PACKAGE) / "globe_combined_mask_compressed.npz"
_RESOLUTION = 1 / 120  # degrees: rows from 90N southwards, columns from 180W eastwards
_READ_ROWS = 256


def _rows(first: int, last: int) -> np.ndarray:
    """Rows first..last (inclusive) of the global mask, decompressed as a stream."""
    with zipfile.ZipFile(_FILE) as archive, archive.open("mask.npy") as stream:
        npy_format.read_magic(stream)
        shape, _, _ = npy_format.read_array_header_1_0(stream)
        width = shape[1]
        row = 0
        while row < first:  # skip rows above the box without keeping them
            step = min(_READ_ROWS, first - row)
            stream.read(step * width)
            row += step
        data = stream.read((last - first + 1) * width)
    return np.frombuffer(data, dtype=bool).reshape(last - first + 1, width)


def is_land(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """Boolean land mask at points (arrays of the same shape; longitude in any convention)."""
    lat = np.clip(np.asarray(latitude, dtype=float), -90.0, 90.0 - 1e-9)
    lon = (np.asarray(longitude, dtype=float) + 180.0) % 360.0
    row = np.minimum(((90.0 - lat) / _RESOLUTION).astype(int), 21599)
    col = np.minimum((lon / _RESOLUTION).astype(int), 43199)
    ocean = _rows(int(row.min()), int(row.max()))  # the packaged mask is True over water
    return ~ocean[row - row.min(), col]
