"""Agents' held tools with a gate: ``held_tools: [{name: charge, when: "args.amount > 100"}]``
(SQLite and PostgreSQL). A false gate runs the call at once and the trail says why;
a true one (or one that cannot be evaluated) waits for a person."""

from __future__ import annotations

from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.base.errors import DefinitionError
from core.definitions.agents import AgentSpec
from core.definitions.workflow import parse_definition
from core.engine.tools import ToolRegistry
from core.store.db import Database
from tests.helpers.engine import Calls, events, open_approval_of, run, start, status
from tests.integration.agents.conftest import BOSS
from tests.integration.agents.scripted import scripted

GATED = [{"name": "charge", "when": "args.amount > 100"}]


def charge_step(amount: float, held: list[Any]) -> dict[str, Any]:
    return {
        "name": "agent",
        "type": "task",
        "task": "Charge the order.",
        "agent": scripted(
            [{"call": "charge", "args": {"amount": amount}}, {"final": "done"}],
            tools=["charge"],
            held_tools=held,
            approval={"requested_from": BOSS},
        ),
    }


def test_a_false_gate_runs_the_held_call_at_once_and_records_why(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
) -> None:
    workflow_id = start(db, [charge_step(80.0, GATED)])
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["amount"] for c in calls.of("charge")] == [80.0]
    [skipped] = events(db, workflow_id, "approval.not_required")
    assert skipped.data["reason"] == "not required: args.amount > 100 was false"
    assert (skipped.data["tool"], skipped.data["arguments"], skipped.data["origin"]) == (
        "charge",
        {"amount": 80.0},
        "agent",
    )
    assert events(db, workflow_id, "approval.requested") == []


def test_a_true_gate_waits_for_a_person(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, [charge_step(150.0, GATED)])
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("charge") == []
    request = open_approval_of(db, workflow_id)
    assert request.proposed_call is not None
    assert request.proposed_call["arguments"] == {"amount": 150.0}
    assert events(db, workflow_id, "approval.not_required") == []
    ApprovalEngine(db).respond_to_approval(request.id, BOSS, "approve")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["amount"] for c in calls.of("charge")] == [150.0]


def test_a_gate_that_cannot_be_evaluated_waits(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, [charge_step(50.0, [{"name": "charge", "when": "args.limit > 1"}])])
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("charge") == []


def test_a_gate_reads_the_workflow_input(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    held = [{"name": "charge", "when": "args.amount > input.limit"}]
    workflow_id = start(db, [charge_step(150.0, held)], input_data={"limit": 200})
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["amount"] for c in calls.of("charge")] == [150.0]


def test_a_plain_held_tool_still_always_waits(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, [charge_step(1.0, ["charge"])])
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("charge") == []


@pytest.mark.parametrize(
    "held, problem",
    [
        ([{"name": "charge", "when": "args.amount >"}], "held_tools[0].when: not a valid expression"),
        ([{"name": "charge", "when": "secret > 1"}], "held_tools[0].when: unknown name 'secret'"),
        ([{"name": "charge", "if": "args.amount > 1"}], "unknown field 'if'"),
    ],
)
def test_a_bad_gate_is_refused_when_the_definition_loads(held: list[Any], problem: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_definition({"name": "x", "steps": [charge_step(1.0, held)]})
    assert problem in str(refused.value)


def test_gates_survive_a_round_trip_through_the_spec() -> None:
    spec = AgentSpec.model_validate({"held_tools": ["refund", *GATED]})
    assert spec.held_tools == ["refund", "charge"]
    again = AgentSpec.model_validate(spec.model_dump())
    assert again.held_when == {"charge": "args.amount > 100"}
    assert again.held_entries() == ["refund", {"name": "charge", "when": "args.amount > 100"}]


def test_a_standing_rule_releases_an_agents_held_call_without_asking(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
) -> None:
    from core.approvals import standing_rules
    from core.identity.users import add_user

    add_user(db, "rules@example.com", role="admin")
    rule = standing_rules.create_rule(
        db, "rules@example.com", tool="charge", condition="args.amount <= 200", days=1
    )
    workflow_id = start(db, [charge_step(150.0, ["charge"])])
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["amount"] for c in calls.of("charge")] == [150.0]
    [decided] = events(db, workflow_id, "approval.decided")
    assert decided.actor == f"system:rule:{rule['id']}"
    assert decided.data["released_call"]["arguments"] == {"amount": 150.0}
    # Above the rule, the agent's call waits as before.
    waiting = start(db, [charge_step(250.0, ["charge"])])
    run(db, registry)
    assert status(db, waiting) == "waiting_approval"
    assert [c["amount"] for c in calls.of("charge")] == [150.0]
