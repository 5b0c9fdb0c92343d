"""Verification regions (documented in docs/evaluate.md): the domain, land and sea, PRUDENCE boxes.

The PRUDENCE regions (Christensen and Christensen, Climatic Change 81, 2007) are the boxes
European regional-model verification conventionally uses. A region is kept when it holds at least
one cell of the evaluated domain; land and sea come from an offline 1-km land mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dlens.common.grid import Domain
from dlens.evaluate.landmask import is_land


@dataclass(frozen=True)
class Box:
    """A latitude/longitude box, bounds inclusive, in degrees."""

    code: str
    name: str
    south: float
    north: float
    west: float
    east: float

    def description(self) -> str:
        return f"{self.name} {self.south:g}–{self.north:g}N {self.west:g}–{self.east:g}E (PRUDENCE)"


PRUDENCE: tuple[Box, ...] = (
    Box("BI", "British Isles", 50, 59, -10, 2),
    Box("IP", "Iberian Peninsula", 36, 44, -10, 3),
    Box("FR", "France", 44, 50, -5, 5),
    Box("ME", "Mid-Europe", 48, 55, 2, 16),
    Box("SC", "Scandinavia", 55, 70, 5, 30),
    Box("AL", "Alps", 44, 48, 5, 15),
    Box("MD", "Mediterranean", 36, 44, 3, 25),
    Box("EA", "Eastern Europe", 44, 55, 16, 30),
)


@dataclass(frozen=True)
class Regions:
    """Named boolean masks over a domain: masks (K, nlat, nlon), `names[0]` is the whole domain."""

    names: tuple[str, ...]
    descriptions: tuple[str, ...]
    masks: np.ndarray

    def to_meta(self) -> dict[str, dict]:
        return {
            name: {"description": text, "cells": int(mask.sum())}
            for name, text, mask in zip(self.names, self.descriptions, self.masks)
        }


@lru_cache(maxsize=4)
def regions_for(domain: Domain) -> Regions:
    """The regions with at least one cell in `domain`."""
    lat, lon = np.meshgrid(domain.latitude, domain.longitude, indexing="ij")
    land = is_land(lat, lon)
    candidates = [
        ("domain", f"the whole evaluated domain ({domain.name}: {domain.spec()})", np.ones_like(land)),
        ("land", "land cells (offline 1-km land mask)", land),
        ("sea", "sea cells", ~land),
    ] + [
        (
            box.code,
            box.description(),
            (lat >= box.south) & (lat <= box.north) & (lon >= box.west) & (lon <= box.east),
        )
        for box in PRUDENCE
    ]
    kept = [(n, d, m) for n, d, m in candidates if m.any()]
    return Regions(
        tuple(n for n, _, _ in kept), tuple(d for _, d, _ in kept), np.stack([m for _, _, m in kept])
    )


@dataclass(frozen=True)
class Partition:
    """Every cell of a domain in exactly one region: `index` (nlat, nlon) into `names`."""

    names: tuple[str, ...]
    index: np.ndarray


@lru_cache(maxsize=4)
def partition_for(domain: Domain) -> Partition:
    """The regions the `emos` baseline fits its weights in: the first PRUDENCE box holding a cell (`rest`
    outside them all), split into land and sea: names like `AL-land`, `rest-sea`."""
    lat, lon = np.meshgrid(domain.latitude, domain.longitude, indexing="ij")
    box = np.full(lat.shape, len(PRUDENCE))
    for k, b in reversed(list(enumerate(PRUDENCE))):
        box[(lat >= b.south) & (lat <= b.north) & (lon >= b.west) & (lon <= b.east)] = k
    index = 2 * box + ~is_land(lat, lon)
    names = tuple(
        f"{code}-{part}" for code in (*(b.code for b in PRUDENCE), "rest") for part in ("land", "sea")
    )
    return Partition(names, index)
