"""Fixtures for agent tests: a registry whose tools record their calls."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine.tools import ToolRegistry
from tests.helpers.engine import Calls

BOSS = "boss@example.com"


@pytest.fixture
def registry(calls: Calls) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register("lookup")
    def lookup(order: str) -> dict[str, Any]:
        """Look an order up."""
        calls.add("lookup", order=order)
        return {"order": order, "total": 120.0}

    @reg.register("charge")
    def charge(amount: float, idempotency_key: str, currency: str = "USD") -> dict[str, Any]:
        """Charge the customer."""
        calls.add("charge", amount=amount, currency=currency, key=idempotency_key)
        return {"charged": amount, "currency": currency}

    @reg.register("refund")
    def refund(amount: float) -> dict[str, Any]:
        """Refund the customer."""
        calls.add("refund", amount=amount)
        return {"refunded": amount}

    return reg
