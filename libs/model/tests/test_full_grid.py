"""Every architecture predicts a full-grid field (MACCGE01, 420 × 700, the 105 input channels of four species)
on the CPU within a memory bound, at the reduced widths the tests build (`SMALL_SETTINGS`), as predict runs it:
the whole field at once, UNETR++ (built for its training shape) on tiles of that shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlens.model.architectures import SMALL_SETTINGS, build_ensemble_model
from dlens.model.inference import onednn
from dlens.model.tiling import model_tiling, tiled_forward

FULL_GRID = (420, 700)
TRAINED = (64, 96)
#: The most memory one field's forward pass may add (measured 2026-12-07: 0.10–1.58 GiB at these widths).
BOUND_BYTES = 3 * 2**30


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), bytes."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(f"{field}:"))
    return int(line.split()[1]) * 1024


def reset_peak() -> int:
    """Reset this process's peak resident set (VmHWM) to the current one, which it returns."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_bytes("VmRSS")


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
    before = reset_peak()
    with torch.no_grad(), onednn(enabled=False):
        out = model(inputs) if tiling is None else tiled_forward(model, inputs, tiling)
    added = status_bytes("VmHWM") - before
    assert out.shape == (1, 4, *FULL_GRID) and torch.isfinite(out).all()
    assert 0 < added < BOUND_BYTES, f"{architecture}: +{added / 2**30:.2f} GiB"
