"""Tools for the kill-and-resume tests, loaded by runner subprocesses through
COUNTERSIGN_TOOL_MODULES. Each call is appended to the file named by
AGENT_CALLS_FILE, so the test sees calls made in every process."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from core.engine.tools import default_registry


def _record(tool: str, **kwargs: Any) -> None:
    with open(os.environ["AGENT_CALLS_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"tool": tool, "pid": os.getpid(), **kwargs}) + "\n")


@default_registry.register("lookup")
def lookup(order: str) -> dict[str, Any]:
    """Look an order up."""
    _record("lookup", order=order)
    return {"order": order, "total": 120.0}


@default_registry.register("charge")
def charge(amount: float, idempotency_key: str) -> dict[str, Any]:
    """Charge the customer."""
    _record("charge", amount=amount, key=idempotency_key)
    return {"charged": amount}


@default_registry.register("slow_export")
def slow_export(order: str, idempotency_key: str) -> dict[str, Any]:
    """Export an order (blocks while AGENT_SLOW_BLOCK is set, so the test can kill mid-call)."""
    _record("slow_export", order=order, key=idempotency_key)
    if os.environ.get("AGENT_SLOW_BLOCK"):
        time.sleep(120)
    return {"exported": order}
