"""What the store offers a replica: registered models and forecast runs, reread when stale or missed, and
kept through a store outage (`dlens.serve.outage`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from dlens.common.reader import StoreReader
from dlens.model.bundle import read_bundle
from dlens.model.registry import ModelEntry, entries
from dlens.serve.outage import LastGood, StoreHealth
from dlens.serve.problems import RequestProblem

T = TypeVar("T")


class Catalog:
    """Registry entries, bundles and a store reader, reread after `refresh_s` seconds (new runs, new models);
    a bundle's model answers to its id, beside (or instead of) the registry's. An id missing from a registry
    read less than `unknown_ttl_s` seconds old is unknown without a reread: however many unknown ids clients
    send, the registry is read at most once per `unknown_ttl_s` for them. While the store does not answer,
    the last good registry and reader are served and the store is tried again every `retry_s` seconds.

    Its methods block on the store: call them off the event loop."""

    def __init__(
        self,
        store: str,
        refresh_s: float,
        bundles: tuple[str, ...] = (),
        unknown_ttl_s: float = 0.0,
        retry_s: float = 5.0,
    ):
        self.store, self.refresh_s, self.unknown_ttl_s = store, refresh_s, unknown_ttl_s
        self.health = StoreHealth(retry_s)
        self._bundles = LastGood(lambda: [read_bundle(location) for location in bundles], self.health)
        self._reader = LastGood(self._open_reader, self.health)
        self._models = LastGood(self._read_models, self.health)

    def reader(self, max_age_s: float | None = None) -> StoreReader:
        """A reader no older than `max_age_s` (default `refresh_s`), its run index read: the last good one
        while the store does not answer."""
        return self._reader.get(self.refresh_s if max_age_s is None else max_age_s)

    @property
    def last_reader(self) -> StoreReader | None:
        """The last good reader, without reading the store (None before the first)."""
        return self._reader.value

    @property
    def last_models(self) -> dict[str, ModelEntry]:
        """The last registry read, without reading the store (empty before the first)."""
        return self._models.value or {}

    def read(self, read: Callable[[], T]) -> T:
        """`read()`, a read of the store beyond the registry and the run index (members, static fields,
        weights): a 503 while the store does not answer."""
        return self.health.read(read)

    def ready(self) -> int:
        """The runs in the store, read at most every store retry period (a probe does not throw away the
        requests' reader each time); a 503 while the store does not answer."""
        runs = len(self.reader(max_age_s=min(self.refresh_s, self.health.retry_s)).complete_runs())
        self.health.check()
        return runs

    def models(self, refresh: bool = False) -> dict[str, ModelEntry]:
        """Registered models by id, oldest first."""
        return self._models.get(0 if refresh else self.refresh_s)

    def model(self, model_id: str) -> ModelEntry:
        """The entry of `model_id` (`latest`: the newest); 404 naming the known ids. A miss rereads the
        registry (a model published since) unless the last read is under `unknown_ttl_s` old."""
        entry = self._find(model_id)
        if entry is None and self._models.age >= self.unknown_ttl_s:
            self.models(refresh=True)
            entry = self._find(model_id)
        if entry is None:
            ids = ", ".join(self.models()) or "none"
            raise RequestProblem(404, f"model {model_id!r} is not in the registry (models: {ids})")
        return entry

    def _find(self, model_id: str) -> ModelEntry | None:
        known = self.models()
        if model_id == "latest":
            return list(known.values())[-1] if known else None
        return known.get(model_id)

    def _open_reader(self) -> StoreReader:
        reader = StoreReader(self.store)
        reader.complete_runs()  # the run index, kept with the reader
        return reader

    def _read_models(self) -> dict[str, ModelEntry]:
        bundles = self._bundles.get(float("inf"))  # read once
        found = sorted([*entries(self.store), *bundles], key=lambda e: e.card["created"])
        return {e.model_id: e for e in found}
