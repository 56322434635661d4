"""Small fixtures the recovery tests share with the engine tests' helpers.

``calls`` and cheap password hashing are defined here (not imported) because
the integration conftests that hold them are being reorganised; the
``registry`` of recording tools is the engine tests' own.
"""

from __future__ import annotations

import pytest

from tests.integration.core.conftest import Calls, registry  # noqa: F401  (a fixture)


@pytest.fixture
def calls() -> Calls:
    """Tool calls recorded by the test registry (thread-safe)."""
    return Calls()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test users get passwords; scrypt at full cost would dominate these tests' time."""
    import core.users

    monkeypatch.setattr(core.users, "SCRYPT_N", 2**4)
