"""The dashboard's built-in runner is wired like any runner (core.runtime): it runs a
tool from COUNTERSIGN_TOOL_MODULES, with exactly the arguments the step gave."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from core.engine import workflows as ops
from tests.helpers.engine import wait_until

TOOL_MODULE = """
import json, os
from core.engine import tool

@tool
def record_dashboard_call(order: str, amount: float) -> dict:
    with open(os.environ["RECORD_TO"], "w") as out:
        json.dump({"order": order, "amount": amount}, out)
    return {"recorded": order}
"""


def test_the_dashboards_runner_runs_a_tool_module_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from components import services

    module = f"dashboard_tools_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(TOOL_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("COUNTERSIGN_TOOL_MODULES", module)
    record = tmp_path / "received.json"
    monkeypatch.setenv("RECORD_TO", str(record))
    url = f"sqlite:///{tmp_path / 'dashboard.db'}"

    started = services._services(url, "internal", False)
    try:
        assert started.runner is not None and module in sys.modules
        workflow = ops.create_workflow(
            started.db,
            {
                "name": "Tool module run",
                "steps": [
                    {
                        "name": "record",
                        "type": "tool",
                        "tool": "record_dashboard_call",
                        "args": {"order": "A-17", "amount": 120.5},
                    }
                ],
            },
            created_by="cli:test",
        )
        wait_until(
            lambda: ops.get_workflow(started.db, workflow.id).status == "completed",
            timeout=30,
            what="the dashboard's runner completes the workflow",
        )
        assert json.loads(record.read_text()) == {"order": "A-17", "amount": 120.5}
    finally:
        if started.runner is not None:
            started.runner.stop()
        started.db.dispose()
