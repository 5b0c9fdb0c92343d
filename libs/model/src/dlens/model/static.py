"""The static input channels (land-sea mask, orography, latitude, longitude) on a domain of the store."""

from __future__ import annotations

import numpy as np

from dlens.common.grid import Domain, crop_of
from dlens.common.layout import STATIC
from dlens.common.reader import StoreReader

#: The static input channels, in order. Latitude and longitude (scaled to [-1, 1] over the full MACCGE01
#: grid) let the model learn where each member is biased: a convolution alone hardly knows where it is.
STATIC_FIELDS = ("land_sea_mask", "orography", "latitude", "longitude")


def static_fields(reader: StoreReader, names: tuple[str, ...], domain: Domain | None = None) -> np.ndarray:
    """The named static channels (C, H, W) on `domain` (default: the store's); mask and orography (/ 1000 m)
    are zeros where the store has none. ValueError when `domain` is not inside the store's domain."""
    domain = domain or reader.spec.domain
    rows, cols = crop_of(reader.spec.domain, domain)
    lat, lon = np.meshgrid(domain.latitude, domain.longitude, indexing="ij")
    builders = {
        "land_sea_mask": lambda: reader.root[STATIC]["land_sea_mask"][rows, cols],
        "orography": lambda: reader.root[STATIC]["orography"][rows, cols] / 1000.0,
        "latitude": lambda: (lat - 51.0) / 21.0,
        "longitude": lambda: (lon - 10.0) / 35.0,
    }
    fields = [builders[name]() for name in names]
    return np.nan_to_num(np.stack(fields) if fields else np.zeros((0, *domain.shape))).astype(np.float32)
