"""The prediction side of a replica: registered models loaded once (multiplexed by id), concurrent
requests batched dynamically into one forward pass per model and domain."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import numpy as np
import ray
import torch
from ray import serve

from dlens.common.config import get_settings
from dlens.model.inference import ensemble
from dlens.model.registry import ModelEntry, load_model
from dlens.model.tiling import configured_tiling
from dlens.serve.args import ServeArgs
from dlens.serve.batches import Outcome, answer, is_device_error
from dlens.serve.catalog import Catalog
from dlens.serve.problems import RequestProblem, unprocessable
from dlens.serve.samples import Sample
from dlens.serve.statics import StaticCache

#: The `user_config` keys `reconfigure` applies (infra/serve/config.yaml may set only these).
USER_CONFIG_KEYS = ("max_batch_size", "batch_wait_timeout_s")
#: Models a replica keeps loaded; the least recently used is dropped beyond this.
MODELS_PER_REPLICA = 4


@dataclass(frozen=True)
class LoadedModel:
    entry: ModelEntry
    network: torch.nn.Module


class Predictor:
    """DL-ENS fields for samples, on the GPU when the replica has one (bf16 autocast). Lives in the
    serving replica (no second Ray hop per request: 5–7 ms on the 2-core dev machine)."""

    def __init__(self, catalog: Catalog, args: ServeArgs):
        self.catalog = catalog
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        # As many CPU threads as Ray gave the replica (torch would take every core of the node).
        torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
        self.batch_sizes: Counter[int] = Counter()
        self.loads: Counter[str] = Counter()
        self._static = StaticCache(catalog, args.static_cache_size)
        self._failure: Exception | None = None
        settings = get_settings()  # the replica's DLENS_* environment
        self._tiling = configured_tiling(settings.inference_tile, settings.inference_overlap)
        self.reconfigure(
            {"max_batch_size": args.max_batch_size, "batch_wait_timeout_s": args.batch_wait_timeout_s}
        )

    def reconfigure(self, config: dict) -> None:
        """Batching settings from the Serve config's `user_config` (applied without a restart)."""
        unknown = set(config) - set(USER_CONFIG_KEYS)
        if unknown:
            raise ValueError(
                f"unknown user_config keys {sorted(unknown)}; known: {', '.join(USER_CONFIG_KEYS)}"
            )
        if "max_batch_size" in config:
            self._batch.set_max_batch_size(int(config["max_batch_size"]))
        if "batch_wait_timeout_s" in config:
            self._batch.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))

    @serve.multiplexed(max_num_models_per_replica=MODELS_PER_REPLICA)
    async def model(self, model_id: str) -> LoadedModel:
        """Load a registered model once per replica (Serve keeps the most recently used ones)."""
        entry = await asyncio.to_thread(self.catalog.model, model_id)
        network = await asyncio.to_thread(self.catalog.read, lambda: load_model(self.catalog.store, entry))
        self.loads[entry.model_id] += 1
        return LoadedModel(entry, network.to(self.device))

    async def predict(self, sample: Sample) -> np.ndarray:
        """DL-ENS (species, H, W) of one sample, batched with concurrent ones; 422 where the model fails on
        this sample's input (its batch-mates are answered)."""
        outcome = await self._batch(sample)
        if isinstance(outcome, ValueError) and not isinstance(outcome, RequestProblem):
            raise unprocessable(f"model {sample.model_id} cannot predict this input: {outcome}") from outcome
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0)  # both set from ServeArgs in __init__
    async def _batch(self, samples: list[Sample]) -> list[Outcome]:
        """The outcome of each sample; a device error marks the replica unhealthy."""
        self.batch_sizes[len(samples)] += 1
        outcomes = await answer(samples, self._pass)
        failure = next((o for o in outcomes if isinstance(o, Exception) and is_device_error(o)), None)
        if failure is not None:
            self._failure = failure
        return outcomes

    async def _pass(self, group: list[Sample]) -> np.ndarray:
        loaded = await self.model(group[0].model_id)
        return await asyncio.to_thread(self._forward, loaded, group)

    def _forward(self, loaded: LoadedModel, group: list[Sample]) -> np.ndarray:
        members = np.stack([s.members() for s in group])
        static = self._static.get(loaded.entry.static_names, group[0].domain)
        leads, times = [s.lead for s in group], [s.valid_time for s in group]
        encoded = np.stack([s.predictors for s in group])
        return ensemble(loaded.network, loaded.entry, members, static, leads, times, encoded, self._tiling)

    async def ready(self, model_id: str) -> dict:
        """Load a model and report it: the readiness probe."""
        loaded = await self.model(model_id)
        return {"model": loaded.entry.model_id, "device": str(self.device)}

    def stats(self) -> dict:
        """Batches of each size this replica ran, model loads per id, its device and torch threads."""
        return {
            "batch_sizes": dict(self.batch_sizes), "loads": dict(self.loads), "device": str(self.device),
            "threads": torch.get_num_threads(),
        }  # fmt: skip

    def check_health(self) -> None:
        """Raise after a device error in a forward pass (Serve then replaces the replica)."""
        if self._failure is not None:
            raise RuntimeError(f"the device failed on this replica: {self._failure!r}")
