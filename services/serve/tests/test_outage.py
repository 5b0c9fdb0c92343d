"""A replica's catalog through a store outage: the last good registry is served, a 503 says why where nothing
was read yet, the store is not tried again before the back-off is over, and it is used again once it
answers. (The outage over HTTP, S3 stopped and stalled under a running replica: test_http_api.py.)"""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import EndpointConnectionError

from dlens.model.registry import ModelEntry
from dlens.serve import catalog as catalog_module
from dlens.serve.catalog import Catalog
from dlens.serve.problems import StoreUnavailable

RETRY_S = 0.2


@pytest.fixture
def registry(monkeypatch) -> dict:
    """The registry the catalog reads: its entries, whether the store answers, and the reads it got."""
    state = {"entries": [ModelEntry("m1", {"created": "2025-01-01T00:00:00"})], "up": False, "reads": 0}

    def entries(store: str) -> list[ModelEntry]:
        state["reads"] += 1
        if not state["up"]:
            raise EndpointConnectionError(endpoint_url="http://s3.example")
        return list(state["entries"])

    monkeypatch.setattr(catalog_module, "entries", entries)
    return state


def test_without_a_good_read_the_catalog_answers_503_and_backs_off(registry):
    catalog = Catalog("s3://bucket/store", refresh_s=0, retry_s=RETRY_S)
    for _ in range(3):
        with pytest.raises(StoreUnavailable) as refused:
            catalog.model("m1")
        assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
        assert "unreachable (EndpointConnectionError since" in refused.value.detail
        assert "s3.example" not in refused.value.detail
    assert registry["reads"] == 1  # backing off: refused at once, the store not tried
    registry["up"] = True
    time.sleep(RETRY_S)
    assert catalog.model("m1").model_id == "m1" and catalog.health.failure is None


def test_the_last_good_registry_is_served_while_the_store_fails(registry):
    registry["up"] = True
    catalog = Catalog("s3://bucket/store", refresh_s=0, retry_s=RETRY_S)
    assert list(catalog.models()) == ["m1"]
    registry["up"] = False
    registry["entries"].append(ModelEntry("m2", {"created": "2025-01-02T00:00:00"}))
    assert list(catalog.models()) == ["m1"] and catalog.health.failure == "EndpointConnectionError"
    reads = registry["reads"]
    assert catalog.model("m1").model_id == "m1" and list(catalog.models()) == ["m1"]
    assert registry["reads"] == reads  # within the back-off
    time.sleep(RETRY_S)
    registry["up"] = True
    assert list(catalog.models()) == ["m1", "m2"] and catalog.health.failure is None


def test_a_store_read_fails_fast_while_the_store_is_backing_off(registry):
    catalog = Catalog("s3://bucket/store", refresh_s=0, retry_s=RETRY_S)
    calls = []

    def members() -> str:
        calls.append(1)
        raise TimeoutError("read timed out")

    for _ in range(2):
        with pytest.raises(StoreUnavailable, match="TimeoutError"):
            catalog.read(members)
    assert len(calls) == 1
    time.sleep(RETRY_S)
    with pytest.raises(FileNotFoundError):  # a missing file is not an outage
        catalog.read(lambda: open("/nonexistent/dlens"))  # noqa: SIM115
