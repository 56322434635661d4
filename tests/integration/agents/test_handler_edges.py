"""The handler's recovery paths and second checks, called directly and through
the runner (SQLite and PostgreSQL): a parked run asks again if its request was
never opened, a finished run returns its saved output, a released call that is
not what the decision released is refused, and an approved rollback."""

from __future__ import annotations

from typing import Any

import pytest

from core.agents.handler import AgentTaskHandler
from core.approvals.engine import ApprovalEngine
from core.definitions.calls import call_digest, make_call
from core.definitions.workflow import WorkflowDefinition
from core.engine import workflows as ops
from core.engine.executor import AwaitApproval, TaskRequest, scope_of
from core.engine.tools import ToolRegistry
from core.store.db import Database
from tests.helpers.engine import (
    Calls,
    event_types,
    events,
    open_approval_of,
    run,
    start,
    status,
)
from tests.integration.agents.conftest import BOSS
from tests.integration.agents.scripted import SEEN, scripted

STEP = {
    "name": "agent",
    "type": "task",
    "task": "Charge.",
    "agent": scripted(
        [{"call": "charge", "args": {"amount": 10.0}}, {"final": "done"}],
        held_tools=["charge"],
        approval={"requested_from": BOSS},
    ),
}


def request_for(
    db: Database, registry: ToolRegistry, workflow_id: str, decision: dict[str, Any] | None = None
) -> TaskRequest:
    workflow = ops.get_workflow(db, workflow_id)
    step = WorkflowDefinition.model_validate(workflow.definition).steps[0]
    return TaskRequest(
        workflow_id,
        step,
        {**scope_of(workflow), "step": {}},
        f"{workflow_id}/7",
        registry,
        step_run_id=7,
        decision=decision,
    )


def test_a_parked_run_asks_again_and_a_finished_run_returns_its_output(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
) -> None:
    workflow_id = start(db, [STEP])
    handler = AgentTaskHandler(db)
    with pytest.raises(AwaitApproval) as first:
        handler(request_for(db, registry, workflow_id))
    # The runner died before opening the request: the same call is asked about again.
    with pytest.raises(AwaitApproval) as again:
        handler(request_for(db, registry, workflow_id))
    assert again.value.proposed_action == first.value.proposed_action
    assert again.value.config.approvers == [BOSS]
    assert event_types(db, workflow_id).count("agent.step") == 1  # the model was not asked again
    decided = {
        "status": "approved",
        "decided_by": BOSS,
        "data": {},
        "approval_id": "a-1",
        "origin": "task",
        "comment": "",
    }
    output = handler(request_for(db, registry, workflow_id, decided))
    assert output["result"] == "done" and [c["amount"] for c in calls.of("charge")] == [10.0]
    # Called again (the runner died before recording the outcome): nothing runs twice.
    assert handler(request_for(db, registry, workflow_id, decided)) == output
    assert len(calls.of("charge")) == 1


_FORGED = {"tool": "charge", "arguments": {"amount": 1000.0}, "digest": "0" * 64}
_OTHER = {"tool": "refund", "arguments": {"amount": 1.0}, "digest": call_digest("refund", {"amount": 1.0})}


@pytest.mark.parametrize(
    "released, problem",
    [
        ({"call": _FORGED}, "does not match the digest"),
        ({"call": _OTHER}, "is to 'refund', not 'charge'"),
        ({"call": None}, "No released call"),
        (
            {"call": make_call("charge", {"amount": 1.0}), "call_refused": "changed after the decision"},
            "changed after the decision",
        ),
        ({"data": {"arguments": {"amount": 1.0}}}, "opened before edits were released"),
    ],
)
def test_a_released_call_is_checked_again_before_it_runs(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
    released: dict[str, Any],
    problem: str,
) -> None:
    workflow_id = start(db, [STEP])
    handler = AgentTaskHandler(db)
    with pytest.raises(AwaitApproval):
        handler(request_for(db, registry, workflow_id))
    SEEN.clear()
    output = handler(
        request_for(
            db,
            registry,
            workflow_id,
            {
                "status": "modified",
                "decided_by": BOSS,
                "data": {},
                "approval_id": "a-2",
                "origin": "task",
                "comment": "",
                **released,
            },
        )
    )
    assert calls.of("charge") == calls.of("refund") == []
    assert output["decisions"][0]["ran"] is False and problem in output["decisions"][0]["refused"]
    assert problem in SEEN[0] and "did NOT run" in SEEN[0]
    [refused] = events(db, workflow_id, "agent.call_refused")
    assert problem in refused.data["problem"]


def test_an_approved_rollback_pauses_the_workflow_at_the_checkpoint(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
) -> None:
    workflow_id = start(
        db,
        [
            {
                "name": "look",
                "type": "tool",
                "tool": "lookup",
                "args": {"order": "A-1"},
                "create_checkpoint": True,
            },
            {
                "name": "agent",
                "type": "task",
                "task": "Undo if wrong.",
                "agent": scripted(
                    [
                        {"call": "create_checkpoint", "args": {"name": "agent_mark"}},
                        {"call": "rollback", "args": {"checkpoint": "after:look", "reason": "wrong order"}},
                        {"final": "unreachable"},
                    ],
                    approval={"requested_from": BOSS},
                ),
            },
        ],
    )
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    request = open_approval_of(db, workflow_id)
    assert request.proposed_action["tool"] == "rollback"
    assert [c.name for c in ops.checkpoints_of(db, workflow_id)][-1] == "agent_mark"
    ApprovalEngine(db).respond_to_approval(request.id, BOSS, "approve")
    run(db, registry)
    workflow = ops.get_workflow(db, workflow_id)
    assert (workflow.status, workflow.current_step) == ("paused", 1)
    types = event_types(db, workflow_id)
    assert "agent.rolled_back" in types and "workflow.rolled_back" in types
    assert "agent" not in workflow.step_outputs
