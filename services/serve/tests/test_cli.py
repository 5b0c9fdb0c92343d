"""`dlens-serve run` refuses what it cannot serve with one line and exit status 2, before starting Ray."""

from __future__ import annotations

import socket
from datetime import datetime

import pytest

from dlens.serve.cli import main
from dlens.testing.mock_store import build_mock_store


@pytest.fixture(scope="module")
def empty_registry(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("cli") / "mock.zarr")
    build_mock_store(url, datetime(2025, 3, 1), days=1, leads=(0,))
    return url


def test_a_store_without_models_is_refused(empty_registry, capsys):
    assert main(["run", "--store", empty_registry]) == 2
    assert "not in the registry" in capsys.readouterr().err


def test_a_missing_bundle_is_refused(empty_registry, tmp_path, capsys):
    assert main(["run", "--store", empty_registry, "--bundle", str(tmp_path / "no-bundle")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlens-serve:") and "no-bundle" in err


def test_a_missing_store_is_refused(tmp_path, capsys):
    assert main(["run", "--store", str(tmp_path / "nowhere.zarr")]) == 2
    assert "dlens-serve:" in capsys.readouterr().err


def test_a_port_in_use_is_refused(empty_registry, monkeypatch, capsys):
    class OneModel:  # the store has no model: pretend, to reach the port check
        def __init__(self, *args):
            pass

        def model(self, model_id):
            return type("Entry", (), {"model_id": "m"})()

    monkeypatch.setattr("dlens.serve.cli.Catalog", OneModel)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["run", "--store", empty_registry, "--port", str(busy.getsockname()[1])]) == 2
    assert "cannot listen" in capsys.readouterr().err
