"""DL-ENS fields from raw member fields with a registered model: the prediction path of predict and serve."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from dlens.model.features import Normaliser, assemble_inputs, normalise_members, time_values
from dlens.model.registry import ModelEntry
from dlens.model.tiling import Tiling, model_tiling, tiled_forward


def model_inputs(
    members: np.ndarray,
    species: tuple[str, ...],
    normaliser: Normaliser,
    static: np.ndarray,
    leads: Sequence[int],
    valid_times: Sequence[np.datetime64],
    device: torch.device | str = "cpu",
    encoded: np.ndarray | None = None,
    quantiles: tuple[float, ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (batch, C, H, W), normalised median (batch, species, H, W)) on `device` from raw members
    (batch, species, member, H, W; NaN where absent; `species`: the species of each row, the model's
    `block_species` for a model of several levels), static channels (C_static, H, W), leads and valid
    times, and for a model with phase-two predictors their encoded channels (batch, C_encoded, H, W) and the
    quantiles of its member statistics (None: none)."""
    z = np.stack([normalise_members(sample, species, normaliser) for sample in members])
    time = np.stack([time_values(lead, t) for lead, t in zip(leads, valid_times)])
    static_batch = torch.from_numpy(static.astype(np.float32)).to(device).expand(len(members), -1, -1, -1)
    extra = None if encoded is None else torch.from_numpy(encoded.astype(np.float32)).to(device)
    return assemble_inputs(
        torch.from_numpy(z).to(device), static_batch, torch.from_numpy(time).to(device), extra, quantiles
    )


def ensemble(
    model: torch.nn.Module,
    entry: ModelEntry,
    members: np.ndarray,
    static: np.ndarray,
    leads: Sequence[int],
    valid_times: Sequence[np.datetime64],
    encoded: np.ndarray | None = None,
    tiling: Tiling | None = None,
) -> np.ndarray:
    """DL-ENS fields (batch, block, H, W) in µg/m³ from raw members (batch, block, member, H, W; NaN where a
    member is absent; the blocks are `entry.blocks`: one per species for a model of one level, one per species
    and level otherwise), the static channels (C, H, W), each sample's lead and valid time and, for a model
    with phase-two predictors, their channels (batch, C, H, W) from `entry.encoder`: `ensemble_inputs`, then
    `run_model`.
    """
    device = next(model.parameters()).device
    inputs = ensemble_inputs(entry, members, static, leads, valid_times, encoded, device)
    return run_model(model, entry, inputs, tiling)


def ensemble_inputs(
    entry: ModelEntry,
    members: np.ndarray,
    static: np.ndarray,
    leads: Sequence[int],
    valid_times: Sequence[np.datetime64],
    encoded: np.ndarray | None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The inputs (batch, C, H, W) on `device` of the model of `entry` (arguments as `ensemble`'s); ValueError
    where the encoded predictors are not the model's."""
    expected = len(entry.encoder.names)
    if (encoded is None and expected) or (encoded is not None and encoded.shape[1] != expected):
        got = "none" if encoded is None else f"{encoded.shape[1]}"
        raise ValueError(
            f"model {entry.model_id} reads {expected} encoded predictor channels (entry.encoder), got {got}"
        )
    quantiles = entry.predictors.statistics_quantiles
    inputs, _ = model_inputs(
        members, entry.block_species, entry.normaliser, static, leads, valid_times, device, encoded, quantiles
    )
    return inputs


def run_model(
    model: torch.nn.Module, entry: ModelEntry, inputs: torch.Tensor, tiling: Tiling | None = None
) -> np.ndarray:
    """DL-ENS fields (batch, block, H, W) in µg/m³ from the model's inputs (`ensemble_inputs`): on overlapping
    tiles where `tiling` is given (`dlens.model.tiling`), or where the model is built for one shape and the
    field is larger (tiles of that shape), else the whole field at once.

    Runs where the model's parameters are: on a GPU under bf16 autocast; on the CPU without oneDNN, whose
    kernels change with the batch size (1.8e-4 µg/m³ on the demo model), so that a field does not depend on
    which other requests shared its batch (at about twice the CPU time).
    """
    device = next(model.parameters()).device
    tiling = model_tiling(entry.fixed_shape, inputs.shape[-2:], tiling)
    on_gpu = device.type == "cuda"
    with (
        torch.no_grad(),
        onednn(enabled=on_gpu),
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_gpu),
    ):
        out = (
            (model(inputs) if tiling is None else tiled_forward(model, inputs, tiling)).float().cpu().numpy()
        )
    fields = [entry.normaliser.inverse(sp, out[:, k]) for k, sp in enumerate(entry.block_species)]
    return np.stack(fields, axis=1).astype(np.float32)


@contextmanager
def onednn(enabled: bool) -> Iterator[None]:
    """oneDNN (mkldnn) kernels on or off inside the block (`mkldnn.flags` also sets TF32, warning)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before
