"""Starting a workflow: a refused definition names every problem at once, unknown tools too."""

from __future__ import annotations

import pytest

from core.base.errors import DefinitionError
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.store.db import Database


def test_create_workflow_names_an_unknown_tool_with_every_other_problem(db: Database) -> None:
    registry = ToolRegistry()
    registry.add("known", lambda: {})
    steps = [
        {"name": "pay", "type": "tool", "tool": "nope_tool"},
        {"name": "ask", "type": "approval", "approval_config": {"type": "vote"}},
        {"name": "pay", "type": "tool", "tool": "known"},
    ]
    with pytest.raises(DefinitionError) as caught:
        ops.create_workflow(db, {"name": "UT", "steps": steps}, tools=registry)
    assert sorted(caught.value.problems) == [
        "steps[0].tool: no tool is registered as 'nope_tool' in this process (COUNTERSIGN_TOOL_MODULES)",
        "steps[1].approval_config.type: must be one of binary, form, budget",
        "steps[2].name: duplicate step name 'pay' (also steps[0])",
    ]
    assert ops.list_workflows(db).total == 0  # nothing written
    started = ops.create_workflow(db, {"name": "UT", "steps": [steps[2]]}, tools=registry)
    assert started.name == "UT"
