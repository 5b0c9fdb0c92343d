"""`dlens-serve run` refuses what it cannot serve with one line and exit status 2, before starting Ray; it
serves anonymously on loopback only, with a warning."""

from __future__ import annotations

import socket
from datetime import datetime

import pytest

from dlens.common.config import Settings
from dlens.serve.cli import check_auth, main
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


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "serve.example.org"])
def test_a_host_beyond_loopback_needs_a_token_or_allow_anonymous(no_token, host, tmp_path, capsys):
    """Refused before the store is even opened, in one line naming both ways out."""
    assert main(["run", "--host", host, "--store", str(tmp_path / "nowhere.zarr")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dlens-serve: --host {host} is reachable from other machines")
    assert "DLENS_API_TOKEN" in err and "--allow-anonymous" in err and err.count("\n") == 1


def test_loopback_without_a_token_is_anonymous_with_a_warning(no_token):
    for host in ["127.0.0.1", "localhost", "::1"]:
        anonymous, warning = check_auth(host, 8000, False, Settings())
        assert anonymous and warning == (
            f"warning: no DLENS_API_TOKEN: every local user and process can call the API on {host}:8000"
        )


def test_allow_anonymous_or_a_token_opens_any_host(no_token):
    opened = "warning: anonymous access on 0.0.0.0:8000: anyone who reaches it can call the API"
    assert check_auth("0.0.0.0", 8000, True, Settings()) == (True, opened)
    no_token.setenv("DLENS_ALLOW_ANONYMOUS", "true")
    assert check_auth("0.0.0.0", 8000, False, Settings()) == (True, opened)
    no_token.setenv("DLENS_ALLOW_ANONYMOUS", "false")
    no_token.setenv("DLENS_API_TOKEN", "0123456789abcdef")
    assert check_auth("0.0.0.0", 8000, False, Settings()) == (False, "")
    assert check_auth("127.0.0.1", 8000, False, Settings()) == (False, "")


@pytest.mark.parametrize("token", ["<openssl rand -hex 32>", "short", "0123456789abcdef\n"])
def test_a_token_that_cannot_be_a_bearer_token_is_refused(no_token, token, tmp_path, capsys):
    """A placeholder, a few characters, a newline left by a file: refused, and never echoed."""
    no_token.setenv("DLENS_API_TOKEN", token)
    assert main(["run", "--store", str(tmp_path / "nowhere.zarr")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlens-serve: DLENS_API_TOKEN is not a usable bearer token") and token not in err
