"""A replica's caches stay bounded whatever clients send: static fields of the most recent crops only, and
unknown model ids answered from the last registry read until it is `unknown_ttl_s` old."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from dlens.common.grid import Domain
from dlens.common.reader import StoreReader
from dlens.model.registry import ModelEntry
from dlens.model.static import STATIC_FIELDS, static_fields
from dlens.serve import catalog as catalog_module
from dlens.serve import statics
from dlens.serve.catalog import Catalog
from dlens.serve.problems import RequestProblem
from dlens.serve.statics import StaticCache
from dlens.testing.mock_store import build_mock_store


def test_the_static_cache_keeps_the_most_recent_crops_only(tmp_path, monkeypatch):
    url = str(tmp_path / "mock.zarr")
    whole = build_mock_store(url, datetime(2025, 3, 1), days=1, leads=(0,)).domain
    reads: list[Domain] = []

    def counted(reader: StoreReader, names: tuple[str, ...], domain: Domain) -> np.ndarray:
        reads.append(domain)
        return static_fields(reader, names, domain)

    monkeypatch.setattr(statics, "static_fields", counted)
    cache = StaticCache(Catalog(url, 30), size=2)
    crops = [Domain(f"rows {n}", whole.i0, whole.i0 + n, whole.j0, whole.j1) for n in range(1, 6)]
    for crop in crops:
        expected = static_fields(StoreReader(url), STATIC_FIELDS, crop)
        np.testing.assert_array_equal(cache.get(STATIC_FIELDS, crop), expected)
    assert cache.get.cache_info().currsize == 2
    cache.get(STATIC_FIELDS, crops[-1])  # kept
    cache.get(STATIC_FIELDS, crops[0])  # dropped: read again
    assert reads == [*crops, crops[0]]


def test_an_unknown_model_id_is_not_looked_up_again_within_the_ttl(monkeypatch):
    published = [ModelEntry("m1", {"created": "2025-01-01T00:00:00"})]
    reads: list[str] = []

    def entries(store: str) -> list[ModelEntry]:
        reads.append(store)
        return list(published)

    monkeypatch.setattr(catalog_module, "entries", entries)
    catalog = Catalog("store", refresh_s=30, unknown_ttl_s=60)
    for model_id in ["nope", "nope", "other", "nope"]:
        with pytest.raises(RequestProblem) as refused:
            catalog.model(model_id)
        assert refused.value.status == 404 and "m1" in refused.value.detail
    assert len(reads) == 1  # the first read answers every miss within unknown_ttl_s
    assert catalog.model("m1").model_id == "m1" and list(catalog.models()) == ["m1"] and len(reads) == 1
    published.append(ModelEntry("m2", {"created": "2025-01-02T00:00:00"}))
    with pytest.raises(RequestProblem):
        catalog.model("m2")  # published, but the registry was read under unknown_ttl_s ago
    catalog.unknown_ttl_s = 0  # as if that read were older
    assert catalog.model("m2").model_id == "m2" and len(reads) == 2
