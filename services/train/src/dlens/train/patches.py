"""Crops of a sample's fields, for training on patches of a full-grid store (`data.patches`).

Each (run, lead) read gives several patches, so an epoch reads every sample once however many patches it
trains on. The members, static fields (the land-sea mask, orography, latitude and longitude: the patch's
position), encoded predictors, target and mask are cut at the same place; the time encodings are the
sample's. A batch of patches is the concatenation of the samples' patches (`collate_patches`).
"""

from __future__ import annotations

import numpy as np
import torch

#: The sample entries that are fields (..., H, W), cut at each patch.
FIELDS = ("members", "static", "predictors", "target", "mask")


def patch_origins(
    shape: tuple[int, int], size: tuple[int, int], count: int, rng: np.random.Generator
) -> np.ndarray:
    """The top-left corners (count, 2) of `count` patches of `size` in a field of `shape`.

    A corner is drawn uniformly over every place a patch can overlap the field, then moved inside: every cell
    is covered, the edge cells as often as those more than a patch from every edge, and no cell twice as
    often as another along an axis; corners drawn inside only would reach an edge cell `size` times less
    often than the middle.
    """
    (height, width), (rows, cols) = shape, size
    if rows > height or cols > width:
        raise ValueError(f"patches of {rows} × {cols} do not fit in a field of {height} × {width}")
    top = np.clip(rng.integers(1 - rows, height, count), 0, height - rows)
    left = np.clip(rng.integers(1 - cols, width, count), 0, width - cols)
    return np.stack([top, left], axis=1)


def crop_sample(sample: dict[str, torch.Tensor], origins: np.ndarray, size: tuple[int, int]) -> dict:
    """The patches of one sample: each field entry cut at `origins` (patch, ...), the other entries
    repeated per patch, and `origin` (patch, 2): each patch's top-left cell in the store's domain."""
    rows, cols = size
    patches = {
        name: torch.stack([sample[name][..., r : r + rows, c : c + cols] for r, c in origins])
        for name in FIELDS
    }
    for name, value in sample.items():
        if name not in FIELDS:
            patches[name] = value.expand(len(origins), *value.shape)
    patches["origin"] = torch.from_numpy(origins.astype(np.int64))
    return patches


def collate_patches(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A batch of patches: every sample's patches, one after another."""
    return {name: torch.cat([item[name] for item in items]) for name in items[0]}
