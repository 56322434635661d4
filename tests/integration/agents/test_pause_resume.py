"""Agents pause for a person and resume with the decision (SQLite and PostgreSQL).

Scripted models drive the real smolagents loop; tools record their calls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidResponse
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.store.db import Database
from core.store.tables import AgentRun, ApprovalResponse
from tests.helpers.engine import (
    Calls,
    event_types,
    events,
    open_approval_of,
    run,
    start,
    status,
    step_runs,
)
from tests.integration.agents.conftest import BOSS
from tests.integration.agents.scripted import SEEN, scripted


def agent_step(script: list[dict[str, Any]], **agent: Any) -> dict[str, Any]:
    agent.setdefault("approval", {"requested_from": BOSS})
    agent.setdefault("tools", ["lookup", "charge", "refund"])
    return {"name": "agent", "type": "task", "task": "Settle the order.", "agent": scripted(script, **agent)}


def agent_run(db: Database, workflow_id: str) -> AgentRun:
    with db.read() as session:
        [row] = session.scalars(select(AgentRun).where(AgentRun.workflow_id == workflow_id)).all()
        return row


def output(db: Database, workflow_id: str) -> dict[str, Any]:
    return ops.get_workflow(db, workflow_id).step_outputs["agent"]


CHARGE = {"call": "charge", "args": {"amount": 100.0}}


def test_request_approval_pauses_and_the_decision_is_the_tool_result(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
) -> None:
    workflow_id = start(
        db,
        [
            agent_step(
                [
                    {"call": "lookup", "args": {"order": "A-1"}},
                    {
                        "call": "request_approval",
                        "args": {
                            "title": "Refund A-1?",
                            "description": "It broke.",
                            "approver": BOSS,
                            "context": {"amount": 120},
                        },
                    },
                    {"final": "refund approved"},
                ]
            )
        ],
    )
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    paused = agent_run(db, workflow_id)
    assert paused.status == "suspended"
    assert paused.pending_call == {
        "tool": "request_approval",
        "kind": "request",
        "arguments": {
            "title": "Refund A-1?",
            "description": "It broke.",
            "approver": BOSS,
            "context": {"amount": 120},
        },
    }
    assert [s["kind"] for s in paused.memory["steps"]] == ["task", "action", "action"]
    request = open_approval_of(db, workflow_id)
    assert (request.title, request.approvers, request.context_data) == (
        "Refund A-1?",
        [BOSS],
        {"amount": 120},
    )
    assert request.proposed_action["origin"] == "task"

    ApprovalEngine(db).respond_to_approval(request.id, BOSS, "approve", comment="fine by me")
    SEEN.clear()
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    result = output(db, workflow_id)
    assert result["result"] == "refund approved"
    assert result["rehearsal"] is False
    assert result["model"] == "python:tests.integration.agents.scripted:ScriptedModel"
    assert result["steps"] == 3 and result["token_usage"] == {"input": 60, "output": 15}
    observation = json.loads(SEEN[0].split("Observation:\n", 1)[1])
    assert observation == {
        "decision": "approved",
        "approved": True,
        "decided_by": BOSS,
        "comment": "fine by me",
        "data": {},
    }
    assert calls.of("lookup") == [{"order": "A-1"}]  # not run again after the pause
    types = event_types(db, workflow_id)
    assert types.count("agent.step") == 3
    for expected in ("agent.started", "agent.paused", "agent.resumed", "agent.completed"):
        assert expected in types
    first = events(db, workflow_id, "agent.step")[0].data
    assert first["tool_calls"] == [{"name": "lookup", "arguments": {"order": "A-1"}}]
    assert "total" in first["observations"] and first["token_usage"] == {"input": 10, "output": 5}
    assert len(step_runs(db, workflow_id)) == 1
    assert agent_run(db, workflow_id).status == "completed"


def test_a_rejected_held_call_never_runs(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, [agent_step([CHARGE, {"final": "not charged"}], held_tools=["charge"])])
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert request.proposed_action["tool"] == "charge"
    assert request.proposed_action["args"] == {"amount": 100.0}
    ApprovalEngine(db).respond_to_approval(request.id, BOSS, "reject", comment="too much")
    SEEN.clear()
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("charge") == []
    told = json.loads(SEEN[0].split("Observation:\n", 1)[1])
    assert (told["decision"], told["ran"], told["comment"]) == ("rejected", False, "too much")
    assert output(db, workflow_id)["decisions"][0]["ran"] is False


def test_an_approved_held_call_runs_once_with_changed_arguments(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
) -> None:
    workflow_id = start(db, [agent_step([CHARGE, {"final": "charged"}], held_tools=["charge"])])
    run(db, registry)
    assert calls.of("charge") == []  # held: nothing ran before the decision
    request = open_approval_of(db, workflow_id)
    ApprovalEngine(db).respond_to_approval(request.id, BOSS, "modify", data={"arguments": {"amount": 80.0}})
    SEEN.clear()
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    [charged] = calls.of("charge")
    assert (charged["amount"], charged["currency"]) == (80.0, "USD")
    assert charged["key"].endswith("/0")
    told = json.loads(SEEN[0].split("Observation:\n", 1)[1])
    assert told["arguments_changed_by_approver"] == {"amount": 80.0}
    assert told["result"] == {"charged": 80.0, "currency": "USD"}
    assert output(db, workflow_id)["tool_calls"][0]["args"] == {"amount": 80.0}


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"arguments": {"amount": "a lot"}}, "arguments.amount"),
        ({"arguments": {"amount": 5, "note": "x"}}, "arguments"),
        ({"tool": "refund", "arguments": {"amount": 5}}, "tool"),
    ],
)
def test_an_edit_that_breaks_the_tool_inputs_or_names_another_tool_is_refused(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
    data: dict[str, Any],
    problem: str,
) -> None:
    workflow_id = start(db, [agent_step([CHARGE, {"final": "done"}], held_tools=["charge"])])
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    with pytest.raises(InvalidResponse) as refused:
        ApprovalEngine(db).respond_to_approval(request.id, BOSS, "modify", data=data)
    assert refused.value.problems[0].startswith(problem)
    with db.read() as session:
        assert session.scalars(select(ApprovalResponse)).all() == []  # nothing recorded
    assert ApprovalEngine(db).get(request.id).status == "pending"
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("charge") == calls.of("refund") == []


def test_a_batch_mixing_a_held_call_with_others_is_refused_whole(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
) -> None:
    workflow_id = start(
        db,
        [
            agent_step(
                [
                    {
                        "calls": [
                            {"tool": "lookup", "args": {"order": "A-1"}},
                            {"tool": "charge", "args": {"amount": 100.0}},
                        ]
                    },
                    CHARGE,
                    {"final": "done"},
                ],
                held_tools=["charge"],
            )
        ],
    )
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval", ops.get_workflow(db, workflow_id).error
    assert calls.of("lookup") == []  # the whole batch was refused, none of it ran
    first = events(db, workflow_id, "agent.step")[0].data
    assert "must be called alone" in first["error"]
    assert events(db, workflow_id, "agent.step")[1].data["paused_for"] == "charge"
    ApprovalEngine(db).respond_to_approval(open_approval_of(db, workflow_id).id, BOSS, "approve")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["amount"] for c in calls.of("charge")] == [100.0]


def test_a_code_agent_pauses_at_a_held_call_inside_its_code(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
) -> None:
    code = (
        "info = lookup(order='A-1')\nprint('total', info['total'])\n"
        "paid = charge(amount=info['total'])\nprint('never printed before approval')"
    )
    workflow_id = start(
        db,
        [agent_step([{"code": code}, {"code": "final_answer('paid')"}], type="code", held_tools=["charge"])],
    )
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("lookup") == [{"order": "A-1"}] and calls.of("charge") == []
    pending = agent_run(db, workflow_id).pending_call
    assert pending is not None
    assert pending["tool"] == "charge" and pending["arguments"] == {"amount": 120.0}
    assert "total 120.0" in pending["logs"]
    ApprovalEngine(db).respond_to_approval(open_approval_of(db, workflow_id).id, BOSS, "approve")
    SEEN.clear()
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert output(db, workflow_id)["result"] == "paid"
    assert [c["amount"] for c in calls.of("charge")] == [120.0]
    assert "total 120.0" in SEEN[0] and "nothing after it ran" in SEEN[0]
    assert calls.of("lookup") == [{"order": "A-1"}]


def test_a_code_agent_cannot_import_outside_its_allow_list(
    db: Database,
    registry: ToolRegistry,
) -> None:
    workflow_id = start(
        db,
        [
            agent_step(
                [{"code": "import os\nprint(os.getcwd())"}, {"code": "final_answer('gave up')"}], type="code"
            )
        ],
    )
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    first = events(db, workflow_id, "agent.step")[0].data
    assert "Import of os is not allowed" in first["error"]
