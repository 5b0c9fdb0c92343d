"""An S3 endpoint that is down (refusing connections, or accepting them and never answering) fails a store
request within the configured timeout and attempts, as one `store unreachable` line."""

from __future__ import annotations

import socket
import time

import pytest
from botocore.exceptions import BotoCoreError, EndpointConnectionError

from dlens.common import store
from dlens.common.config import Settings
from dlens.common.store import StoreUnreachableError, open_store, read_file, unreachable
from dlens.testing.plugin import free_port


def use(monkeypatch, **settings) -> None:
    monkeypatch.setattr(store, "get_settings", lambda: Settings(**settings))


@pytest.mark.parametrize("down", ["refusing", "silent"])
def test_a_request_to_an_endpoint_that_is_down_fails_within_its_bounds(monkeypatch, down):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # a listening socket nobody accepts on: the kernel completes connections, no answer ever comes
    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1] if down == 'silent' else free_port()}"
        use(monkeypatch, s3_endpoint_url=endpoint, s3_timeout_s=0.5, s3_attempts=2)
        for request in (
            lambda: read_file("s3://b/s.zarr", "dlens.lock"),
            lambda: open_store("s3://b/s.zarr"),
        ):
            started = time.monotonic()
            with pytest.raises((OSError, BotoCoreError)) as caught:
                request()
            assert time.monotonic() - started < 4  # 2 attempts of 0.5 s and a backoff; unbounded: minutes
            assert str(unreachable(caught.value)).startswith(f"store unreachable: {endpoint}: ")


def test_the_line_names_the_first_failure_and_never_a_password(monkeypatch):
    use(monkeypatch, s3_endpoint_url="http://user:secret@s3.example:9000")
    first = EndpointConnectionError(
        endpoint_url="http://s3.example:9000/b/s.zarr/forecasts/ingest_status/c/0"
    )
    try:
        try:
            raise first
        except EndpointConnectionError:
            raise EndpointConnectionError(endpoint_url="http://s3.example:9000/b/s.zarr/dlens.lock") from None
    except EndpointConnectionError as second:
        assert second.__context__ is first
        lost = unreachable(second)
    assert isinstance(lost, StoreUnreachableError) and "secret" not in str(lost)
    assert str(lost).startswith(
        "store unreachable: http://s3.example:9000: Could not connect to the endpoint"
    )
    assert "ingest_status" in str(lost)
    assert unreachable(ValueError("not a network failure")) is None


def test_a_process_bounds_replace_the_settings(monkeypatch):
    use(monkeypatch, s3_timeout_s=7.0, s3_attempts=4)
    config = store.s3_storage_options()["config_kwargs"]
    assert (config["read_timeout"], config["retries"]["total_max_attempts"]) == (7.0, 4)
    store.bound_s3_requests(store.S3Bounds(timeout_s=1.5, attempts=2))  # as a Serve replica does
    try:
        config = store.s3_storage_options()["config_kwargs"]
        assert (config["connect_timeout"], config["retries"]["total_max_attempts"]) == (1.5, 2)
    finally:
        store.bound_s3_requests(None)
    assert store.s3_storage_options()["config_kwargs"]["connect_timeout"] == 7.0
