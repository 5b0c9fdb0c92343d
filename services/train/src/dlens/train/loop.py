"""The per-worker training loop that Ray Train runs (DDP: gloo on CPU, NCCL and bf16 autocast on GPU).

Each epoch trains on the worker's shard of the training samples, validates on its shard of the
validation samples (sums all-reduced across workers), and reports metrics with a checkpoint
(model, optimiser, epoch) through `ray.train.report`. A restarted worker group resumes from the
latest checkpoint, so a lost worker costs at most one epoch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from dlens.train.config import TrainConfig
from dlens.train.dataset import StoreDataset
from dlens.train.features import Normaliser, channel_names
from dlens.train.models import build_model

CHECKPOINT_FILE = "state.pt"
STATIC_FIELDS = ("land_sea_mask", "orography")


def input_channels(config: TrainConfig) -> list[str]:
    return channel_names(config.data.species, STATIC_FIELDS if config.data.static else ())


def make_model(config: TrainConfig, shape: tuple[int, int]) -> torch.nn.Module:
    """The configured architecture: inputs per `input_channels`, one output per species."""
    return build_model(
        config.model.architecture, len(input_channels(config)), len(config.data.species), shape,
        config.model.settings,
    )  # fmt: skip


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weight = mask.to(prediction.dtype)
    return ((prediction - target) ** 2 * weight).sum() / weight.sum().clamp(min=1.0)


def train_loop(params: dict) -> None:
    """Ray Train entry point; `params`: store, config (dict), normaliser (dict)."""
    config = TrainConfig.model_validate(params["config"])
    normaliser = Normaliser(**params["normaliser"])
    torch.manual_seed(config.seed + ray.train.get_context().get_world_rank())
    train_set = StoreDataset(params["store"], config.data, "train", normaliser, training=True)
    val_set = StoreDataset(params["store"], config.data, "validation", normaliser)
    batch = config.optim.batch_size
    train_loader = ray.train.torch.prepare_data_loader(DataLoader(train_set, batch_size=batch, shuffle=True))
    val_loader = ray.train.torch.prepare_data_loader(DataLoader(val_set, batch_size=batch))
    model = ray.train.torch.prepare_model(make_model(config, train_set.shape))
    device = ray.train.torch.get_device()
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.optim.learning_rate, weight_decay=config.optim.weight_decay
    )
    autocast = device.type == "cuda"  # bf16 on GPU; full precision on CPU
    start = _resume(model, optimiser)
    for epoch in range(start, config.optim.epochs):
        if ray.train.get_context().get_world_size() > 1:
            train_loader.sampler.set_epoch(epoch)
        model.train()
        train_loss = 0.0
        for sample in train_loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                prediction = sample["median"] + model(sample["inputs"])
            loss = masked_mse(prediction.float(), sample["target"], sample["mask"])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            train_loss += loss.item()
        metrics = {
            "epoch": epoch + 1,
            "train_loss": train_loss / max(len(train_loader), 1),
            "start_epoch": start,
        }
        metrics.update(_validate(model, val_loader, autocast, device))
        _report(model, optimiser, epoch, metrics)


def _validate(model: torch.nn.Module, loader: DataLoader, autocast: bool, device: torch.device) -> dict:
    """Validation MSE of the model and of the median (normalised space), summed over all workers."""
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # model sse, median sse, count
    with torch.no_grad():
        for sample in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                prediction = (sample["median"] + model(sample["inputs"])).float()
            weight = sample["mask"].to(torch.float64)
            sums[0] += (((prediction - sample["target"]) ** 2) * weight).sum()
            sums[1] += (((sample["median"] - sample["target"]) ** 2) * weight).sum()
            sums[2] += weight.sum()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(sums)
    count = max(sums[2].item(), 1.0)
    val_loss, median_loss = sums[0].item() / count, sums[1].item() / count
    return {
        "val_loss": val_loss,
        "val_median_loss": median_loss,
        "val_ratio": (val_loss / median_loss) ** 0.5,
    }


def _resume(model: torch.nn.Module, optimiser: torch.optim.Optimizer) -> int:
    """Load the latest checkpoint if the run is resuming; return the epoch to start from."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as directory:
        state = torch.load(Path(directory) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    _unwrap(model).load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    return int(state["epoch"]) + 1


def _report(model: torch.nn.Module, optimiser: torch.optim.Optimizer, epoch: int, metrics: dict) -> None:
    """Every worker reports; only rank 0 writes the checkpoint (DDP replicas are identical)."""
    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report(metrics, checkpoint=None)
        return
    with tempfile.TemporaryDirectory() as directory:
        state = {"model": _unwrap(model).state_dict(), "optimiser": optimiser.state_dict(), "epoch": epoch}
        torch.save(state, Path(directory) / CHECKPOINT_FILE)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model
