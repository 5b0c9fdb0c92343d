"""Fixtures of the serve tests."""

import pytest

from dlens.common.config import get_settings


@pytest.fixture
def no_token(monkeypatch):
    """An environment without DLENS_API_TOKEN or DLENS_ALLOW_ANONYMOUS (the settings read afresh)."""
    monkeypatch.delenv("DLENS_API_TOKEN", raising=False)
    monkeypatch.delenv("DLENS_ALLOW_ANONYMOUS", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
