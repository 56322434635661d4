"""Agent profile tests: the dashboard's app fixture, no model configured."""

from __future__ import annotations

import pytest

from tests.integration.dashboard.conftest import app_env  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "COUNTERSIGN_MODEL_PROVIDER",
        "COUNTERSIGN_MODEL_ID",
        "COUNTERSIGN_MODEL_API_BASE",
        "COUNTERSIGN_AGENT_PROFILES",
    ):
        monkeypatch.delenv(name, raising=False)
