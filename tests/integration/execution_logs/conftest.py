"""Execution log tests reuse the agent tests' recording tools."""

from __future__ import annotations

from tests.integration.agents.conftest import BOSS, calls, registry  # noqa: F401
from tests.integration.core.conftest import cheap_password_hashing  # noqa: F401
