"""An agent cannot take a checkpoint under the engine's names (``after:<step>``,
``before:<step>``), so ``rollback --checkpoint after:<step>`` always restores the
engine's own and runs the compensations (probe D, finding 5)."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine import workflows as ops
from core.engine.checkpoints import rollback
from core.engine.tools import ToolRegistry
from core.store.db import Database
from tests.helpers.engine import Calls, accounts, events, run, start, status
from tests.integration.agents.scripted import scripted

ADMIN = "ops@example.com"


def script_for(agent_type: str, name: str) -> list[dict[str, Any]]:
    """The model takes a checkpoint named ``name``, then answers."""
    if agent_type == "code":
        return [
            {"code": f"print(create_checkpoint(name={name!r}, description='routine'))"},
            {"final": "done"},
        ]
    return [{"call": "create_checkpoint", "args": {"name": name}}, {"final": "done"}]


@pytest.mark.parametrize("agent_type", ["tool_calling", "code"])
@pytest.mark.parametrize("name", ["after:check", "before:check"])
def test_an_agents_checkpoint_cannot_take_an_automatic_name(
    db: Database, registry: ToolRegistry, calls: Calls, agent_type: str, name: str
) -> None:
    accounts(db, "admin", ADMIN)

    @registry.register("reserve")
    def reserve(order: str) -> dict[str, Any]:
        calls.add("reserve", order=order)
        return {"reserved": order}

    @registry.register("release")
    def release(**kwargs: Any) -> dict[str, Any]:
        calls.add("release")
        return {}

    agent = scripted(script_for(agent_type, name), type=agent_type, max_steps=3)
    order = {"args": {"order": "O-9"}}
    workflow_id = start(
        db,
        [
            {"name": "check", "type": "tool", "tool": "lookup", **order, "create_checkpoint": True},
            {"name": "reserve", "type": "tool", "tool": "reserve", **order, "compensate": "release"},
            {"name": "summarise", "type": "task", "task": "Summarise the order.", "agent": agent},
        ],
    )
    run(db, registry)

    assert status(db, workflow_id) == "completed"
    # The model was told, and no checkpoint of the agent's was taken.
    told = [
        str(e.data.get("observations") or e.data.get("error")) for e in events(db, workflow_id, "agent.step")
    ]
    assert any("is reserved" in text for text in told), told
    assert [c.name for c in ops.checkpoints_of(db, workflow_id)] == ["after:check"]
    assert not [c for c in ops.checkpoints_of(db, workflow_id) if c.created_by.startswith("agent:")]
    if name == "after:check":
        result = rollback(db, registry, workflow_id, checkpoint_name=name, reason="undo", actor=ADMIN)
        assert result.compensations and calls.of("release")
