"""Full-grid inference by overlapping tiles, blended: for a field larger than a model takes at once (an
architecture built for one shape, or a memory bound on the full CAMS grid).

The field is first padded as the network pads it itself (mfai's autopadding: zeros around the centre, to the
next shape it takes), so that every tile starts on the network's downsampling grid: a convolutional
network then gives the whole-grid field away from the tiles' inner edges, and the tiles disagree only where
the receptive field crosses an edge. Where tiles overlap, their outputs are blended with weights that ramp
linearly from each inner edge over the overlap (1 on the domain's own borders), so no seam is a jump.
The tiles run `batch` at a time: memory holds one batch of tiles and the full-grid output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from mfai.pytorch.padding import pad_batch, undo_padding

#: Cells by which the tiles of a model built for one shape overlap unless a tiling is configured.
DEFAULT_OVERLAP = 32


@dataclass(frozen=True)
class Tiling:
    """Tiles of `tile` (rows, columns) cells, neighbours overlapping by at least `overlap` cells, run `batch`
    at a time. `fixed`: for a network built for one shape (UNetRPP), tiles of exactly that shape, the field
    unpadded (each tile is padded as the network pads the fields it was built for)."""

    tile: tuple[int, int]
    overlap: int
    batch: int = 4
    fixed: bool = False

    def __post_init__(self) -> None:
        if min(self.tile) <= 0 or self.overlap < 0 or self.batch <= 0:
            raise ValueError(f"tiling {self}: tile sizes and batch > 0, overlap ≥ 0")
        if self.overlap >= min(self.tile):
            raise ValueError(f"tiling {self}: the overlap must be smaller than the tile")


def configured_tiling(tile: int, overlap: int) -> Tiling | None:
    """The tiling of the settings `inference_tile` and `inference_overlap` (None: the whole field at once);
    the overlap is capped below the tile."""
    return None if tile == 0 else Tiling((tile, tile), min(overlap, tile - 1))


def model_tiling(
    fixed_shape: tuple[int, int] | None, shape: tuple[int, int], configured: Tiling | None
) -> Tiling | None:
    """How a model runs on an H×W field: on tiles of its own shape where it is built for one (`fixed_shape`)
    and the field is another, else as `configured`."""
    if fixed_shape is None or tuple(shape) == tuple(fixed_shape):
        return configured
    overlap = DEFAULT_OVERLAP if configured is None else configured.overlap
    return Tiling(tuple(fixed_shape), min(overlap, min(fixed_shape) - 1), fixed=True)


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """First cells of the tiles along an axis of `length` cells: tiles of `tile` cells, each overlapping the
    next by at least `overlap`, every start a multiple of `align` (and the last tile ending at `length` where
    `length - tile` is one); one tile where `length` ≤ `tile`."""
    if length <= tile:
        return [0]
    stride = max(align, (tile - overlap) // align * align)
    starts = list(range(0, length - tile, stride))
    last = (length - tile) // align * align
    if last > starts[-1]:
        starts.append(last)
    if starts[-1] + tile < length:
        raise ValueError(f"tiles of {tile} aligned on {align} cannot cover {length} cells")
    return starts


def blend_weights(start: int, size: int, length: int, overlap: int) -> torch.Tensor:
    """Weights along one axis of a tile of `size` cells at `start` in an axis of `length`: a linear ramp over
    `overlap` cells from each inner edge (an edge inside the axis), 1 elsewhere; always > 0."""
    weights = torch.ones(size)
    if overlap == 0:
        return weights
    ramp = (torch.arange(min(overlap, size)) + 0.5) / overlap
    if start > 0:
        weights[: len(ramp)] = torch.minimum(weights[: len(ramp)], ramp)
    if start + size < length:
        weights[size - len(ramp) :] = torch.minimum(weights[size - len(ramp) :], ramp.flip(0))
    return weights


def network_shape(model: torch.nn.Module, shape: tuple[int, int]) -> tuple[int, int]:
    """The shape the model pads an H×W field to (its mfai backbone's `validate_input_shape`), or the field's
    own where the model does not pad."""
    backbone = getattr(model, "backbone", model)
    if not hasattr(backbone, "validate_input_shape") or not getattr(
        backbone.settings, "autopad_enabled", False
    ):
        return shape
    fits, padded = backbone.validate_input_shape(torch.Size(shape))
    return shape if fits else tuple(padded)


def alignment(model: torch.nn.Module, limit: int = 256) -> int:
    """The network's downsampling: the smallest square side (up to `limit`) it takes without padding."""
    backbone = getattr(model, "backbone", model)
    if not hasattr(backbone, "validate_input_shape"):
        return 1
    for side in range(1, limit + 1):
        if backbone.validate_input_shape(torch.Size((side, side)))[0]:
            return side
    return 1


def tile_boxes(
    shape: tuple[int, int], tile: tuple[int, int], overlap: int, align: int = 1
) -> list[tuple[int, int, int, int]]:
    """(first row, first column, rows, columns) of every tile over an H×W field (`tile_starts` per axis)."""
    rows = tile_starts(shape[0], tile[0], overlap, align)
    cols = tile_starts(shape[1], tile[1], overlap, align)
    return [(r, c, min(tile[0], shape[0]), min(tile[1], shape[1])) for r in rows for c in cols]


def tiled_forward(model: torch.nn.Module, inputs: torch.Tensor, tiling: Tiling) -> torch.Tensor:
    """`model(inputs)` for inputs (batch, C, H, W) computed tile by tile and blended (module docstring); the
    tile sizes are rounded down to the network's alignment (unless `tiling.fixed`)."""
    shape = tuple(inputs.shape[-2:])
    if tiling.fixed:
        if shape[0] < tiling.tile[0] or shape[1] < tiling.tile[1]:
            raise ValueError(f"a {shape[0]}×{shape[1]} field is smaller than the {tiling.tile} tiles")
        padded_shape, padded, align, tile = shape, inputs, 1, tiling.tile
    else:
        padded_shape = network_shape(model, shape)
        padded = pad_batch(inputs, torch.Size(padded_shape), pad_value=0)
        align = alignment(model)
        tile = tuple(max(align, t // align * align) for t in tiling.tile)
    boxes = tile_boxes(padded_shape, tile, tiling.overlap, align)
    n = len(inputs)
    total, weight_sum = None, torch.zeros(padded_shape, device=inputs.device)
    for first in range(0, len(boxes), tiling.batch):
        chunk = boxes[first : first + tiling.batch]
        out = model(torch.cat([padded[..., r : r + h, c : c + w] for r, c, h, w in chunk])).float()
        if total is None:
            total = torch.zeros((n, out.shape[1], *padded_shape), device=inputs.device)
        for k, (r, c, h, w) in enumerate(chunk):
            weights = torch.outer(
                blend_weights(r, h, padded_shape[0], tiling.overlap),
                blend_weights(c, w, padded_shape[1], tiling.overlap),
            ).to(inputs.device)
            total[..., r : r + h, c : c + w] += out[k * n : (k + 1) * n] * weights
            weight_sum[r : r + h, c : c + w] += weights
    return undo_padding(total / weight_sum, old_shape=torch.Size(shape))
