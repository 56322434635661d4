"""Teams run end to end as ordinary workflows with the runner (SQLite and PostgreSQL):
each member is handed the previous member's answer, gates and held tools wait
for a person decided through core.approvals.engine."""

from __future__ import annotations

from typing import Any

import pytest

from core.agents import profiles, teams
from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from tests.helpers.engine import Calls, events, open_approval_of, run, status
from tests.integration.agents.scripted import scripted
from tests.integration.agents_teams import echo


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """The admin edits teams, the requester (a service) starts them (core.identity.permissions)."""
    add_user(db, ADMIN, role="admin")
    add_user(db, "requester@example.com", role="service")


ADMIN = "admin@example.com"
EDITOR = "editor@example.com"
ECHO = "tests.integration.agents_teams.echo:EchoModel"


def echo_profile(db: Database, name: str, label: str) -> None:
    profiles.create_profile(
        db,
        {
            "name": name,
            "model_provider": "python",
            "model_id": ECHO,
            "settings": {"model": {"options": {"label": label}}},
        },
        ADMIN,
    )


def rehearsal_profile(db: Database, name: str) -> None:
    profiles.create_profile(db, {"name": name, "model_provider": "rehearsal"}, ADMIN)


def results(db: Database, workflow_id: str) -> dict[str, Any]:
    outputs = ops.get_workflow(db, workflow_id).step_outputs
    return {step: output.get("result") for step, output in outputs.items()}


def test_three_members_each_get_the_previous_answer(db: Database, registry: ToolRegistry) -> None:
    echo.TASKS.clear()
    for name, label in (("researcher", "A"), ("writer", "B"), ("editor", "C")):
        echo_profile(db, name, label)
    teams.create_team(
        db,
        {
            "name": "news desk",
            "description": "Tides explained",
            "members": ["researcher", "writer", "editor"],
        },
        ADMIN,
    )
    workflow = teams.start_team(db, "news desk", "explain tides", "requester@example.com")
    assert (workflow.name, workflow.status, workflow.input_data) == (
        "team:news desk",
        "running",
        {"task": "explain tides"},
    )
    assert teams.team_of(workflow) == "news desk"

    run(db, registry)
    assert status(db, workflow.id) == "completed"
    assert echo.TASKS == [("A", "explain tides"), ("B", "A(explain tides)"), ("C", "B(A(explain tides))")]
    assert results(db, workflow.id) == {
        "researcher": "A(explain tides)",
        "writer": "B(A(explain tides))",
        "editor": "C(B(A(explain tides)))",
    }
    # The normal timeline: one started/completed pair per member, in order, with agent events.
    assert [e.step_name for e in events(db, workflow.id, "step.completed")] == [
        "researcher",
        "writer",
        "editor",
    ]
    assert [e.step_name for e in events(db, workflow.id, "agent.completed")] == [
        "researcher",
        "writer",
        "editor",
    ]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_an_approval_gate_waits_for_a_person(db: Database, registry: ToolRegistry, decision: str) -> None:
    for name in ("researcher", "writer", "editor"):
        rehearsal_profile(db, name)
    teams.create_team(
        db,
        {
            "name": "desk",
            "members": ["researcher", "writer", "editor"],
            "settings": {"approve_before": ["editor"], "approval": {"requested_from": EDITOR}},
        },
        ADMIN,
    )
    workflow_id = teams.start_team(db, "desk", "tides", "requester@example.com").id

    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert results(db, workflow_id) == {
        "researcher": "Rehearsed: tides",
        "writer": "Rehearsed: Rehearsed: tides",
    }
    gate = open_approval_of(db, workflow_id)
    assert (gate.step_name, gate.approvers, gate.title) == (
        "approve_editor",
        [EDITOR],
        "Team desk: pass the work to editor?",
    )
    assert gate.proposed_action["context"] == {
        "team": "desk",
        "next_member": "editor",
        "from": "writer",
        "input": "Rehearsed: Rehearsed: tides",
    }

    ApprovalEngine(db).respond_to_approval(gate.id, EDITOR, decision, comment="checked")
    run(db, registry)
    if decision == "approve":
        assert status(db, workflow_id) == "completed"
        assert results(db, workflow_id)["editor"] == "Rehearsed: Rehearsed: Rehearsed: tides"
        assert results(db, workflow_id)["approve_editor"] is None  # the gate passes nothing on
    else:
        assert status(db, workflow_id) == "failed"
        assert "editor" not in results(db, workflow_id)


def test_a_member_with_a_held_tool_asks_mid_step(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    echo.TASKS.clear()
    agent = scripted([{"call": "charge", "args": {"amount": 40}}, {"final": "charged 40"}])
    profiles.create_profile(
        db,
        {
            "name": "cashier",
            "model_provider": "python",
            "model_id": agent["model"]["model_id"],
            "tools": ["lookup"],
            "held_tools": ["charge"],
            "settings": {
                "model": {"options": agent["model"]["options"]},
                "approval": {"requested_from": EDITOR},
            },
        },
        ADMIN,
    )
    echo_profile(db, "clerk", "R")
    teams.create_team(db, {"name": "till", "members": ["cashier", "clerk"]}, ADMIN)
    workflow_id = teams.start_team(db, "till", "charge order 7", "requester@example.com").id

    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval" and calls.of("charge") == []
    held = open_approval_of(db, workflow_id)
    assert (held.step_name, held.proposed_action["tool"], held.approvers) == ("cashier", "charge", [EDITOR])
    ApprovalEngine(db).respond_to_approval(held.id, EDITOR, "approve")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["amount"] for c in calls.of("charge")] == [40]
    assert echo.TASKS == [("R", "charged 40")]
    assert results(db, workflow_id)["clerk"] == "R(charged 40)"
