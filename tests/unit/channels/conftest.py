from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.base.config import get_settings


@pytest.fixture(autouse=True)
def link_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "newest-secret-aaaaaaaaaaaa,older-secret-bbbbbbbbbbbb")
    monkeypatch.setenv("COUNTERSIGN_DASHBOARD_URL", "https://dash.example.com/")
    monkeypatch.setenv("COUNTERSIGN_GATEWAY_URL", "https://gw.example.com")
    monkeypatch.delenv("COUNTERSIGN_ENV", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
