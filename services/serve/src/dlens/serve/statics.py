"""The static input channels of the domains requests ask for, the most recently used kept in memory."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dlens.common.grid import Domain
from dlens.model.static import static_fields
from dlens.serve.catalog import Catalog


class StaticCache:
    """Static channels (C, H, W) by channel names and domain, read from the store once, the `size` most
    recently used kept: domains are crops the clients choose, and an unbounded cache grows with each one."""

    def __init__(self, catalog: Catalog, size: int):
        self.catalog = catalog
        self.get = lru_cache(maxsize=size)(self._read)

    def _read(self, names: tuple[str, ...], domain: Domain) -> np.ndarray:
        return self.catalog.read(lambda: static_fields(self.catalog.reader(), names, domain))
