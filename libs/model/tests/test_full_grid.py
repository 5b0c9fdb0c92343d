"""Every architecture predicts a full-grid field (MACCGE01, 420 × 700, the 105 input channels of four species)
on the CPU within a memory bound, at the reduced widths the tests build (`SMALL_SETTINGS`), as predict runs it:
the whole field at once, UNETR++ (built for its training shape) on tiles of that shape."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from dlens.model.architectures import SMALL_SETTINGS, build_ensemble_model
from dlens.model.inference import onednn
from dlens.model.tiling import model_tiling, tiled_forward

FULL_GRID = (420, 700)
TRAINED = (64, 96)
#: The most memory one field's forward pass may add (measured 2026-12-07: 0.1–1.7 GB at these widths).
BOUND_BYTES = 3 * 2**30


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


@pytest.mark.slow
@pytest.mark.parametrize("architecture", SMALL_SETTINGS)
def test_every_architecture_predicts_a_full_grid_field_within_memory(architecture):
    torch.manual_seed(0)
    model = build_ensemble_model(
        architecture, SMALL_SETTINGS[architecture], "mixture", 4, 105, TRAINED
    ).eval()
    tiling = model_tiling(TRAINED if architecture == "UNetRPP" else None, FULL_GRID, None)
    assert (tiling is not None) == (architecture == "UNetRPP")
    inputs = torch.randn(1, 105, *FULL_GRID)
    peak, done = [0], threading.Event()

    def sample() -> None:  # the resident set while the forward pass runs (its large tensors are mmap'd)
        while not done.is_set():
            peak[0] = max(peak[0], resident_bytes())
            time.sleep(0.002)

    before = resident_bytes()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with torch.no_grad(), onednn(enabled=False):
            out = model(inputs) if tiling is None else tiled_forward(model, inputs, tiling)
    finally:
        done.set()
        sampler.join()
    assert out.shape == (1, 4, *FULL_GRID) and torch.isfinite(out).all()
    assert peak[0] - before < BOUND_BYTES, f"{architecture}: +{(peak[0] - before) / 2**30:.2f} GiB"
