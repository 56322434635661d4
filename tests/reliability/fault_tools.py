"""Tools with a side effect for the fault-injection run, loaded by ``python -m core
runner`` through COUNTERSIGN_TOOL_MODULES.

Every call first appends ``label<TAB>idempotency key<TAB>pid`` to a journal
file (one ``write`` on an ``O_APPEND`` descriptor, so lines from processes
killed at any instant never interleave), then takes a while, the window in
which the test's killer strikes. The journal is the side effect the test
audits: a step whose label appears under two idempotency keys ran twice
without the key that lets a real tool drop the duplicate.
"""

from __future__ import annotations

import os
import time
from typing import Any

from core.engine.tools import default_registry


def journal_lines(path: str) -> list[tuple[str, str, int]]:
    """(label, idempotency key, pid) of every call so far."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as journal:
        rows = [line.rstrip("\n").split("\t") for line in journal if line.endswith("\n")]
    return [(label, key, int(pid)) for label, key, pid in rows]


@default_registry.register("journaled_effect")
def journaled_effect(journal: str, label: str, seconds: float, idempotency_key: str) -> dict[str, Any]:
    """Record the effect, keyed by the idempotency key, then take ``seconds``."""
    descriptor = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, f"{label}\t{idempotency_key}\t{os.getpid()}\n".encode())
    finally:
        os.close(descriptor)
    time.sleep(seconds)
    return {"label": label, "key": idempotency_key}
