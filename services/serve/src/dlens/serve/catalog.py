"""What the store offers a replica: registered models and forecast runs, reread when stale or missed."""

from __future__ import annotations

import math
import time

from dlens.common.reader import StoreReader
from dlens.model.bundle import read_bundle
from dlens.model.registry import ModelEntry, entries
from dlens.serve.problems import RequestProblem


class Catalog:
    """Registry entries, bundles and a store reader, reopened after `refresh_s` seconds (new runs, new
    models); a bundle's model answers to its id, beside (or instead of) the registry's. An id missing from a
    registry read less than `unknown_ttl_s` seconds old is unknown without a reread: however many unknown ids
    clients send, the registry is read at most once per `unknown_ttl_s` for them."""

    def __init__(
        self, store: str, refresh_s: float, bundles: tuple[str, ...] = (), unknown_ttl_s: float = 0.0
    ):
        self.store, self.refresh_s, self.unknown_ttl_s = store, refresh_s, unknown_ttl_s
        self._bundles = [read_bundle(location) for location in bundles]
        self._reader: StoreReader | None = None
        self._reader_at = 0.0
        self._models: dict[str, ModelEntry] = {}
        self._models_at = -math.inf  # never read

    def reader(self) -> StoreReader:
        """A reader no older than `refresh_s` (its run index and statuses are cached)."""
        if self._reader is None or time.monotonic() - self._reader_at > self.refresh_s:
            self._reader, self._reader_at = StoreReader(self.store), time.monotonic()
        return self._reader

    def models(self, refresh: bool = False) -> dict[str, ModelEntry]:
        """Registered models by id, oldest first."""
        if refresh or time.monotonic() - self._models_at > self.refresh_s:
            found = sorted([*entries(self.store), *self._bundles], key=lambda e: e.card["created"])
            self._models = {e.model_id: e for e in found}
            self._models_at = time.monotonic()
        return self._models

    def model(self, model_id: str) -> ModelEntry:
        """The entry of `model_id` (`latest`: the newest); 404 naming the known ids. A miss rereads the
        registry (a model published since) unless the last read is under `unknown_ttl_s` old."""
        entry = self._find(model_id)
        if entry is None and time.monotonic() - self._models_at >= self.unknown_ttl_s:
            self.models(refresh=True)
            entry = self._find(model_id)
        if entry is None:
            ids = ", ".join(self._models) or "none"
            raise RequestProblem(404, f"model {model_id!r} is not in the registry (models: {ids})")
        return entry

    def _find(self, model_id: str) -> ModelEntry | None:
        known = self.models()
        if model_id == "latest":
            return list(known.values())[-1] if known else None
        return known.get(model_id)
