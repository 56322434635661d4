"""Tools for the runner-kill test, loaded by ``python -m core runner`` through
COUNTERSIGN_TOOL_MODULES. Each call appends one line to a log file first, so
the test sees which process ran which step with which idempotency key."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from core.engine.tools import default_registry


@default_registry.register("log_and_sleep")
def log_and_sleep(path: str, label: str, seconds: float, idempotency_key: str) -> dict[str, Any]:
    """Record the call, then take ``seconds`` (the window in which the test kills us).

    A re-run of a key already logged (the step resumed after a crash) is quick.
    """
    log_path = Path(path)
    seen = log_path.exists() and f" {idempotency_key} " in log_path.read_text(encoding="utf-8")
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"{label} {idempotency_key} {os.getpid()}\n")
    time.sleep(0.0 if seen else seconds)
    return {"label": label, "pid": os.getpid(), "rerun": seen}
