"""Agent profile tests: the dashboard's app fixture, cheap password hashing."""

from __future__ import annotations

import pytest

from tests.integration.dashboard.conftest import app_env  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.users

    monkeypatch.setattr(core.users, "SCRYPT_N", 2**4)


@pytest.fixture(autouse=True)
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COUNTERSIGN_MODEL_PROVIDER", "COUNTERSIGN_MODEL_ID", "COUNTERSIGN_MODEL_API_BASE",
                 "COUNTERSIGN_AGENT_PROFILES"):
        monkeypatch.delenv(name, raising=False)
