"""State machine and audit trail on real databases: refused moves write nothing,
every change is an event with actor and before/after, and the database itself
refuses to update or delete events and votes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidTransition, WorkflowNotFound
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.orchestrator import StateManager
from core.store.db import Database
from core.store.tables import ApprovalResponse, WorkflowEvent
from tests.helpers.engine import accounts, approval, events, run, start, status, tool


def count_events(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(WorkflowEvent)) or 0


REFUSALS: dict[str, Callable[[Database, str], object]] = {
    "resume a completed workflow": lambda db, w: ops.resume_workflow(db, w, "x@example.com"),
    "retry a completed workflow": lambda db, w: ops.retry_workflow(db, w, "x@example.com"),
    "start a completed workflow": lambda db, w: ops.start_workflow(db, w, "x@example.com"),
    "cancel a completed workflow": lambda db, w: ops.cancel_workflow(db, w, "x@example.com"),
    "fail a completed workflow": lambda db, w: StateManager(db).transition_workflow_status(
        w, "failed", "x@example.com"
    ),
    "make it pending again": lambda db, w: StateManager(db).transition_workflow_status(
        w, "pending", "x@example.com"
    ),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_invalid_transitions_are_refused_without_a_write(
    db: Database, registry: ToolRegistry, refusal: str
) -> None:
    workflow_id = start(db, [tool("only")])
    accounts(db, "admin", "x@example.com")  # allowed all of these: only the state machine refuses
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    before = (count_events(db), ops.workflow_dict(ops.get_workflow(db, workflow_id)))
    with pytest.raises(InvalidTransition):
        REFUSALS[refusal](db, workflow_id)
    assert (count_events(db), ops.workflow_dict(ops.get_workflow(db, workflow_id))) == before


def test_cancelled_is_final(db: Database) -> None:
    workflow_id = start(db, [approval("gate")])
    accounts(db, "admin", "ops@example.com")
    ops.cancel_workflow(db, workflow_id, "ops@example.com", "not needed")
    for action in (ops.pause_workflow, ops.resume_workflow, ops.cancel_workflow):
        with pytest.raises(InvalidTransition):
            action(db, workflow_id, "ops@example.com")
    assert status(db, workflow_id) == "cancelled"


def test_unknown_workflow_is_named(db: Database) -> None:
    with pytest.raises(WorkflowNotFound, match="'no-such-id'"):
        ops.pause_workflow(db, "no-such-id", "ops@example.com")


def test_every_change_is_an_event_with_actor_and_before_after(db: Database, registry: ToolRegistry) -> None:
    workflow_id = start(db, [tool("one"), approval("gate"), tool("two")], created_by="alice@example.com")
    accounts(db, "approver", "bob@example.com")
    run(db, registry)
    request_id = ops.approvals_of(db, workflow_id)[0].id
    ops.pause_workflow(db, workflow_id, "bob@example.com", "lunch")
    ops.resume_workflow(db, workflow_id, "bob@example.com")
    ApprovalEngine(db).respond_to_approval(request_id, "boss@example.com", "approve")
    run(db, registry)
    StateManager(db).update_workflow_state(workflow_id, {"note": "done"}, actor="carol@example.com")

    trail = ops.events_of(db, workflow_id)
    assert all(e.actor for e in trail)
    assert [e.created_at for e in trail] == sorted(e.created_at for e in trail)
    moves = [
        (e.actor, e.before["status"], e.after["status"])  # type: ignore[index]
        for e in events(db, workflow_id, "workflow.status_changed")
    ]
    assert [m[1:] for m in moves] == [
        ("pending", "running"),
        ("running", "waiting_approval"),
        ("waiting_approval", "paused"),
        ("paused", "waiting_approval"),
        ("waiting_approval", "running"),
        ("running", "completed"),
    ]
    # People are recorded as themselves; the runner's moves carry its runner id.
    assert [m[0] for m in moves][:1] + [m[0] for m in moves][2:5] == [
        "alice@example.com",
        "bob@example.com",
        "bob@example.com",
        "boss@example.com",
    ]
    assert all(m[0].count(":") == 2 for m in (moves[1], moves[5]))  # host:pid:suffix
    assert [e.data.get("reason") for e in events(db, workflow_id, "workflow.status_changed")][2] == "lunch"
    completed = events(db, workflow_id, "step.completed")
    assert [e.step_name for e in completed] == ["one", "gate", "two"]
    first = completed[0]
    assert first.before is not None and first.after is not None
    assert (first.before["current_step"], first.after["current_step"]) == (0, 1)
    assert "one" not in first.before["step_outputs"] and "one" in first.after["step_outputs"]
    [updated] = events(db, workflow_id, "workflow.state_updated")
    assert updated.actor == "carol@example.com"
    assert "note" not in updated.before["context"]  # type: ignore[index]
    assert updated.after["context"]["note"] == "done"  # type: ignore[index]
    kinds = {e.event_type for e in trail}
    assert {
        "workflow.created",
        "step.started",
        "checkpoint.created",
        "approval.requested",
        "approval.responded",
        "approval.decided",
    } <= kinds


def _one_of_each(db: Database) -> None:
    request = ApprovalEngine(db).request_approval(None, "x", requested_from="a@example.com")
    ApprovalEngine(db).respond_to_approval(request.id, "a@example.com", "approve")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE workflow_events SET actor = 'mallory'",
        "DELETE FROM workflow_events",
        "UPDATE approval_responses SET decision = 'reject'",
        "DELETE FROM approval_responses",
    ],
)
def test_database_refuses_to_change_the_audit_trail(db: Database, statement: str) -> None:
    _one_of_each(db)
    with db.read() as session:
        events_before = [(e.id, e.actor) for e in session.scalars(select(WorkflowEvent))]
        votes_before = [(v.id, v.decision) for v in session.scalars(select(ApprovalResponse))]
    assert events_before and votes_before
    with pytest.raises(DBAPIError, match="append-only|append only"), db.session() as session:
        session.execute(text(statement))
    with db.read() as session:
        assert [(e.id, e.actor) for e in session.scalars(select(WorkflowEvent))] == events_before
        assert [(v.id, v.decision) for v in session.scalars(select(ApprovalResponse))] == votes_before
