"""Execution log tests reuse the agent tests' recording tools."""

from __future__ import annotations

import pytest

from tests.integration.agents.conftest import registry  # noqa: F401
from tests.integration.core.conftest import Calls


@pytest.fixture
def calls() -> Calls:
    return Calls()
