"""Inference on overlapping tiles: the tiles cover the field on the network's downsampling grid, the blend
weights ramp over the overlaps, and a convolutional network's tiled field equals its whole-field one away
from the seams (within 1e-3 of the field's std for UNet, 2e-3 for HalfUNet), the seam error measured."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mfai.pytorch.padding import undo_padding

from dlens.model.architectures import SMALL_SETTINGS, build_ensemble_model
from dlens.model.features import Normaliser
from dlens.model.inference import ensemble, model_inputs
from dlens.model.tiling import (
    Tiling,
    alignment,
    blend_weights,
    configured_tiling,
    model_tiling,
    network_shape,
    tile_boxes,
    tile_starts,
    tiled_forward,
)

SHAPE = (100, 150)  # padded to 112 × 160 by networks that downsample by 16
CHANNELS = 56  # the input channels of a two-species model with static fields and time


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "align"), [(112, 64, 32, 16), (160, 64, 16, 16), (50, 20, 5, 1)]
)
def test_tiles_cover_the_axis_aligned_and_overlapping(length, tile, overlap, align):  # fmt: skip
    starts = tile_starts(length, tile, overlap, align)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(s % align == 0 for s in starts)
    assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))  # neighbours overlap enough
    assert tile_starts(30, 64, 16, 16) == [0]  # a short axis is one tile


def test_blend_weights_ramp_from_inner_edges_only():
    inner = blend_weights(16, 64, 160, 16).numpy()
    assert inner[0] == pytest.approx(0.5 / 16) and inner[15] == pytest.approx(15.5 / 16) and inner[16] == 1
    assert inner[-1] == pytest.approx(0.5 / 16)
    border = blend_weights(0, 64, 160, 16).numpy()
    assert border[0] == 1 and border[-1] < 1  # the domain's own border is not a seam
    assert (blend_weights(0, 64, 64, 16).numpy() == 1).all()


def test_configured_tiling_is_off_by_default_and_caps_the_overlap():
    assert configured_tiling(0, 32) is None
    assert configured_tiling(32, 64) == Tiling((32, 32), 31)
    with pytest.raises(ValueError, match="smaller than the tile"):
        Tiling((16, 16), 16)


def single_tile_cells(model: torch.nn.Module, tiling: Tiling) -> torch.Tensor:
    """The cells of the field covered by one tile only (away from the seams)."""
    padded, align = network_shape(model, SHAPE), alignment(model)
    tile = tuple(t // align * align for t in tiling.tile)
    coverage = torch.zeros(padded)
    for r, c, h, w in tile_boxes(padded, tile, tiling.overlap, align):
        coverage[r : r + h, c : c + w] += 1
    return undo_padding(coverage[None, None], old_shape=torch.Size(SHAPE))[0, 0] == 1


@pytest.mark.parametrize("architecture", ["UNet", "HalfUNet"])
def test_a_convolutional_network_tiled_equals_whole_away_from_the_seams(architecture):
    torch.manual_seed(0)
    model = build_ensemble_model(
        architecture, SMALL_SETTINGS[architecture], "correction", 2, CHANNELS, (64, 96)
    )
    model.eval()
    inputs = torch.randn(2, CHANNELS, *SHAPE)
    tiling = Tiling((64, 64), 32, batch=3)
    with torch.no_grad():
        whole, tiled = model(inputs), tiled_forward(model, inputs, tiling)
    assert tiled.shape == whole.shape
    error, std = (tiled - whole).abs(), whole.std().item()
    away = single_tile_cells(model, tiling)
    assert away.sum() > 1000 and (~away).sum() > 1000  # both regions are there
    seams = (error[..., ~away].max() / std).item()
    print(f"{architecture}: max error / std away from the seams {(error[..., away].max() / std).item():.1e}, "
          f"at the seams {seams:.1e}")  # fmt: skip
    # UNet (transposed convolutions): exact to rounding away from the seams. HalfUNet upsamples with
    # UpsamplingBilinear2d (align_corners: the interpolation depends on the size of the field), so a tile
    # differs from the whole field everywhere by 1–2e-3 of the std, whatever the tile size (64 to 128)
    assert (error[..., away].max() / std).item() <= (1e-3 if architecture == "UNet" else 2e-3)
    assert seams <= 1e-2  # blended: no jump at the seams


def test_ensemble_runs_on_tiles_where_a_tiling_is_given():
    # the prediction path of predict and serve: the same DL-ENS fields (µg/m³), tiled or whole
    torch.manual_seed(1)
    species = ("o3", "no2")
    normaliser = Normaliser({sp: 3.0 for sp in species}, {sp: 0.5 for sp in species})
    entry = SimpleNamespace(
        model_id="tiled", species=species, block_species=species, normaliser=normaliser,
        encoder=SimpleNamespace(names=()), fixed_shape=None, predictors=SimpleNamespace(statistics_quantiles=None),
    )  # fmt: skip  # what `ensemble` reads of a registry entry
    rng = np.random.default_rng(0)
    members = np.exp(rng.normal(3, 0.5, (1, 2, 11, *SHAPE))).astype(np.float32)
    static, times = np.zeros((0, *SHAPE), np.float32), [np.datetime64("2025-07-01T12")]
    channels = model_inputs(members, species, normaliser, static, [12], times)[0].shape[1]
    model = build_ensemble_model("UNet", SMALL_SETTINGS["UNet"], "correction", 2, channels, (64, 96)).eval()
    tiling = Tiling((64, 64), 32)
    whole = ensemble(model, entry, members, static, [12], times)
    tiled = ensemble(model, entry, members, static, [12], times, tiling=tiling)
    away = single_tile_cells(model, tiling).numpy()
    assert np.abs(tiled - whole)[..., away].max() <= 1e-3 * whole.std()
    assert not np.array_equal(tiled, whole)  # the tiles ran: they differ at the seams


def test_a_network_built_for_one_shape_runs_on_tiles_of_it():
    # UNetRPP takes only the shape it was built for: a larger field goes through tiles of exactly that
    # shape, and where one tile alone covers a cell the result is the network's on that tile
    torch.manual_seed(2)
    fixed, field = (32, 48), (50, 70)
    model = build_ensemble_model(
        "UNetRPP", SMALL_SETTINGS["UNetRPP"], "correction", 2, CHANNELS, fixed
    ).eval()
    tiling = model_tiling(fixed, field, None)
    assert tiling == Tiling(fixed, 31, fixed=True)
    assert model_tiling(fixed, fixed, None) is None and model_tiling(None, field, None) is None
    inputs = torch.randn(1, CHANNELS, *field)
    with torch.no_grad():
        tiled = tiled_forward(model, inputs, tiling)
        corner = model(inputs[..., : fixed[0], : fixed[1]])
    assert tiled.shape == (1, 2, *field)
    coverage = torch.zeros(field)
    for r, c, h, w in tile_boxes(field, fixed, tiling.overlap):
        coverage[r : r + h, c : c + w] += 1
    alone = coverage[: fixed[0], : fixed[1]] == 1
    assert alone.sum() > 0
    torch.testing.assert_close(tiled[..., : fixed[0], : fixed[1]][..., alone], corner[..., alone])
    with pytest.raises(ValueError, match="smaller than"):
        tiled_forward(model, inputs[..., :20, :], tiling)
