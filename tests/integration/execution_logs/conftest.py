"""Execution log tests reuse the agent tests' recording tools (``calls`` is tests/conftest.py's)."""

from __future__ import annotations

from tests.integration.agents.conftest import registry  # noqa: F401
