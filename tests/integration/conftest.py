"""Fixtures every integration package shares."""

from __future__ import annotations

import pytest

from tests.integration.core.conftest import Calls


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Demo and test users get passwords; scrypt at full cost would dominate these tests' time."""
    import core.users

    monkeypatch.setattr(core.users, "SCRYPT_N", 2**4)


@pytest.fixture
def calls() -> Calls:
    """Tool calls recorded by the test registries (thread-safe)."""
    return Calls()
