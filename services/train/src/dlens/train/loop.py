"""The per-worker training loop that Ray Train runs (DDP: gloo on CPU, NCCL and bf16 autocast on GPU).

Each epoch trains on the worker's shard of the training samples, validates on its shard of the
validation samples (sums all-reduced across workers), and reports metrics with a checkpoint
(model, optimiser, epoch) through `ray.train.report`. A restarted worker group resumes from the
latest checkpoint, so a lost worker costs at most one epoch.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from dlens.model.architectures import build_ensemble_model
from dlens.model.features import Normaliser, assemble_inputs, blocks, channel_names
from dlens.model.head import EnsembleModel
from dlens.model.predictors import Standardisation
from dlens.train.config import TrainConfig
from dlens.train.dataset import StoreDataset, static_names
from dlens.train.objective import Objective

CHECKPOINT_FILE = "state.pt"


def input_channels(config: TrainConfig) -> list[str]:
    data = config.data
    return channel_names(data.species, static_names(data), data.predictors, levels=data.levels)


def block_species(config: TrainConfig) -> tuple[str, ...]:
    """The species of each of the model's blocks (`features.blocks`: per species, each configured level)."""
    return tuple(sp for sp, _ in blocks(config.data.species, config.data.levels))


def make_model(config: TrainConfig, shape: tuple[int, int], channels: int | None = None) -> EnsembleModel:
    """The configured architecture and head: `channels` inputs (default: `input_channels`) → the normalised
    ensemble, one channel per species and level (`features.blocks`)."""
    return build_ensemble_model(
        config.model.architecture, config.model.settings, config.model.head, len(block_species(config)),
        channels or len(input_channels(config)), shape,
    )  # fmt: skip


def loader_options(workers: int) -> dict:
    """DataLoader options: `workers` persistent processes, started by spawn (a forked child would inherit
    zarr's event-loop thread stopped), each opening the store once."""
    if workers == 0:
        return {}
    return {
        "num_workers": workers,
        "persistent_workers": True,
        "prefetch_factor": 4,
        "multiprocessing_context": "spawn",
    }


def worker_loader(dataset: StoreDataset, batch: int, shuffle: bool, options: dict, seed: int) -> DataLoader:
    """This Train worker's DataLoader of a split: under DDP its shard (a DistributedSampler, shuffled with the
    run's seed), with `options` kept (Ray's own sampler would rebuild the loader without the spawned,
    persistent workers), on the worker's device."""
    world = ray.train.get_context().get_world_size()
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed) if world > 1 else None
    loader = DataLoader(
        dataset, batch, shuffle=shuffle and sampler is None, sampler=sampler, collate_fn=dataset.collate,
        **options,
    )  # fmt: skip
    return ray.train.torch.prepare_data_loader(loader, add_dist_sampler=False)


def train_loop(params: dict) -> None:
    """Ray Train entry point; `params`: store, config (dict), normaliser (dict), standardisation (dict, the
    meteo predictors'), progress (queue or None)."""
    config = TrainConfig.model_validate(params["config"])
    normaliser = Normaliser(**params["normaliser"])
    standardisation = Standardisation.from_dict(params["standardisation"])
    torch.manual_seed(config.seed + ray.train.get_context().get_world_rank())
    train_set = StoreDataset(params["store"], config.data, "train", normaliser, standardisation, True)
    val_set = StoreDataset(params["store"], config.data, "validation", normaliser, standardisation)
    batch = config.optim.batch_size
    options = loader_options(config.data.loader_workers)
    train_loader = worker_loader(train_set, batch, True, options, config.seed)
    val_loader = worker_loader(val_set, batch, False, options, config.seed)
    model = ray.train.torch.prepare_model(make_model(config, train_set.shape))
    device = ray.train.torch.get_device()
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.optim.learning_rate, weight_decay=config.optim.weight_decay
    )
    autocast = device.type == "cuda"  # bf16 on GPU; full precision on CPU
    objective = Objective(config.optim.loss, normaliser, block_species(config), device)
    quantiles = config.data.predictors.statistics_quantiles
    start = _resume(model, optimiser)
    for epoch in range(start, config.optim.epochs):
        for group in optimiser.param_groups:
            group["lr"] = cosine_learning_rate(config.optim.learning_rate, epoch, config.optim.epochs)
        if ray.train.get_context().get_world_size() > 1:
            train_loader.sampler.set_epoch(epoch)
        model.train()
        train_loss = sum(
            train_step(model, optimiser, objective, sample, autocast, quantiles) for sample in train_loader
        )
        metrics = {
            "epoch": epoch + 1,
            "train_loss": train_loss / max(len(train_loader), 1),
            "start_epoch": start,
        }
        metrics.update(_validate(model, val_loader, objective, autocast, device, quantiles))
        _report(model, optimiser, epoch, metrics)
        if params.get("progress") is not None and ray.train.get_context().get_world_rank() == 0:
            params["progress"].put(metrics)


def forward(
    model: torch.nn.Module, sample: dict, autocast: bool, quantiles: tuple[float, ...] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, median) of a batch, both normalised: the inputs are assembled where the model runs (with
    the member statistics at `quantiles` where the model has them), the model under bf16 autocast when
    `autocast` (on GPU)."""
    inputs, median = assemble_inputs(
        sample["members"], sample["static"], sample["time"], sample.get("predictors"), quantiles
    )
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=autocast):
        prediction = model(inputs)
    return prediction.float(), median


def train_step(
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    objective: Objective,
    sample: dict,
    autocast: bool,
    quantiles: tuple[float, ...] | None = None,
) -> float:
    """One optimisation step on a batch; returns its loss."""
    prediction, median = forward(model, sample, autocast, quantiles)
    loss = objective(prediction, sample["target"], sample["mask"], median)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return loss.item()


def cosine_learning_rate(peak: float, epoch: int, epochs: int, floor: float = 0.05) -> float:
    """The learning rate of `epoch`: cosine decay from `peak` to `floor` × peak over the run (stateless, so
    a resumed run continues on the same schedule)."""
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs - 1, 1))))


def _validate(
    model: torch.nn.Module,
    loader: DataLoader,
    objective: Objective,
    autocast: bool,
    device: torch.device,
    quantiles: tuple[float, ...] | None,
) -> dict:
    """Validation loss of the model and of the median, summed over all workers."""
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # model loss, median loss, fields
    with torch.no_grad():
        for sample in loader:
            prediction, median = forward(model, sample, autocast, quantiles)
            target, mask = sample["target"], sample["mask"]
            sums[0] += objective.per_field(prediction, target, mask, median).sum()
            sums[1] += objective.per_field(median, target, mask, median).sum()
            sums[2] += (mask.sum(dim=(-2, -1)) > 0).sum()
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
