"""A tool for the browser tests, loaded by the dashboard's own process through
COUNTERSIGN_TOOL_MODULES (its in-process runner runs it). Each call appends
what the tool *received* to the JSON-lines file named by
COUNTERSIGN_E2E_RECEIVED, so the test reads what ran in another process."""

from __future__ import annotations

import json
import os
from typing import Any

from core.engine.tools import tool

RECEIVED_ENV = "COUNTERSIGN_E2E_RECEIVED"


@tool
def record_payment(amount: float, currency: str, note: str = "") -> dict[str, Any]:
    """Pay a supplier (records what it received)."""
    with open(os.environ[RECEIVED_ENV], "a", encoding="utf-8") as out:
        out.write(json.dumps({"amount": amount, "currency": currency, "note": note}) + "\n")
    return {"paid": amount, "currency": currency}
