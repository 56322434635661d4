"""Events record what changed; the whole state at any event is folded from them
(core.records.history), on SQLite and PostgreSQL, for new events and for events written
before migration 0007 slimmed them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.engine.checkpoints import rollback
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.orchestrator import StateManager
from core.records import history
from core.store.db import Database
from core.store.migrate import upgrade
from tests.conftest import _pg_admin, _url_for
from tests.helpers.engine import (
    approval,
    events,
    open_approval_of,
    run,
    start,
    tool,
)

ACTOR = "ops@example.com"


def whole_state(db: Database, workflow_id: str) -> dict[str, Any]:
    workflow = ops.get_workflow(db, workflow_id)
    return {
        "status": workflow.status,
        "current_step": workflow.current_step,
        "context": workflow.context,
        "step_outputs": workflow.step_outputs,
    }


def folded(db: Database, workflow_id: str) -> dict[str, Any]:
    last = ops.events_of(db, workflow_id)[-1]
    return history.states_at(db, workflow_id, last.id)[1]


def test_a_step_event_holds_what_changed_and_the_fold_gives_the_state(
    db: Database, registry: ToolRegistry
) -> None:
    add_user(db, ACTOR, role="admin")  # rolling back is an admin's
    b_reads_a = {**tool("b"), "args": {"label": "b", "value": "${steps.a.done}"}}
    workflow_id = start(
        db,
        [tool("a", create_checkpoint=True), b_reads_a, approval("gate"), tool("c")],
        input_data={"order": 7},
    )
    run(db, registry)
    assert folded(db, workflow_id) == whole_state(db, workflow_id)
    completed = events(db, workflow_id, "step.completed")
    [run_b] = [r for r in ops.step_runs_of(db, workflow_id) if r.step_name == "b"]
    assert completed[1].before == {"current_step": 1, "step_outputs": {}}
    assert completed[1].after == {"current_step": 2, "step_outputs": {"b": {"$step_run": run_b.id}}}
    assert run_b.output is not None and run_b.output["value"] == "a"  # ${steps.a.done} resolved

    ApprovalEngine(db).respond_to_approval(
        open_approval_of(db, workflow_id).id, "boss@example.com", "approve"
    )
    run(db, registry)
    StateManager(db).update_workflow_state(workflow_id, {"note": "later"})
    state = whole_state(db, workflow_id)
    assert state["status"] == "completed" and set(state["step_outputs"]) == {"a", "b", "gate", "c"}
    assert "gate" in state["context"]["approvals"]
    assert folded(db, workflow_id) == state

    # Each event's own before/after, readable: the output in place of its reference.
    [readable_b] = [
        e
        for e in history.readable_events(db, ops.events_of(db, workflow_id))
        if e.event_type == "step.completed" and e.step_name == "b"
    ]
    assert readable_b.after == {"current_step": 2, "step_outputs": {"b": run_b.output}}

    rollback(db, registry, workflow_id, checkpoint_name="after:a", reason="again", actor=ACTOR)
    state = whole_state(db, workflow_id)
    assert (state["status"], set(state["step_outputs"])) == ("paused", {"a"})
    assert folded(db, workflow_id) == state
    # The state at an earlier event is still the one it was.
    gate_done = [
        e
        for e in ops.events_of(db, workflow_id)
        if e.event_type == "step.completed" and e.step_name == "gate"
    ][0]
    _, after_gate = history.states_at(db, workflow_id, gate_done.id)
    assert set(after_gate["step_outputs"]) == {"a", "b", "gate"}
    assert after_gate["current_step"] == 3


def test_a_rejection_that_skips_records_the_decision_and_the_move(
    db: Database, registry: ToolRegistry
) -> None:
    workflow_id = start(db, [tool("a"), {**approval("gate"), "on_reject": {"action": "skip"}}, tool("c")])
    run(db, registry)
    ApprovalEngine(db).respond_to_approval(open_approval_of(db, workflow_id).id, "boss@example.com", "reject")
    run(db, registry)
    [skipped] = events(db, workflow_id, "step.skipped")
    assert skipped.after is not None and skipped.after["current_step"] == 2
    assert skipped.after["context"]["approvals"]["gate"]["status"] == "rejected"
    state = whole_state(db, workflow_id)
    assert (state["status"], set(state["step_outputs"])) == ("completed", {"a", "c"})
    assert folded(db, workflow_id) == state


# -- migration 0007: events written as whole snapshots are slimmed ---------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no schema yet (migrated by the test)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'old.db'}")
        yield db
        db.dispose()
        return
    request.getfixturevalue("pg_template")  # skips (or fails in CI) without a server
    name = f"cs_mig_{uuid.uuid4().hex[:10]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(_url_for(name))
    yield db
    db.dispose()
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _snapshot(status: str, step: int, context: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "current_step": step, "context": context, "step_outputs": outputs}


def test_migration_slims_old_step_events_and_keeps_history_readable(empty_db: Database) -> None:
    db = empty_db
    upgrade(db, "0006")
    meta = sa.MetaData()
    tables = {
        name: sa.Table(name, meta, autoload_with=db.engine)
        for name in ("workflows", "step_runs", "workflow_events", "workflow_checkpoints")
    }
    now = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    decision = {"status": "approved", "decided_by": "boss@example.com"}
    ctx0 = {"order": 7}
    ctx1 = {"order": 7, "approvals": {"gate": decision}}
    out_a, out_gate = {"done": "a"}, {"approval": decision}
    workflow_id = str(uuid.uuid4())
    snapshots = [  # (type, before, after, data): as the engine wrote them before 0007
        ("workflow.created", None, {"status": "pending"}, {}),
        ("workflow.status_changed", {"status": "pending"}, {"status": "running"}, {}),
        (
            "step.completed",
            _snapshot("running", 0, ctx0, {}),
            _snapshot("running", 1, ctx0, {"a": out_a}),
            {"step_run_id": 1, "attempt": 1},
        ),
        (
            "step.completed",
            _snapshot("running", 1, ctx1, {"a": out_a}),
            _snapshot("running", 2, ctx1, {"a": out_a, "gate": out_gate}),
            {"step_run_id": 2, "attempt": 1},
        ),
        ("workflow.status_changed", {"status": "running"}, {"status": "completed"}, {}),
    ]
    with db.engine.begin() as conn:
        conn.execute(
            tables["workflows"]
            .insert()
            .values(
                id=workflow_id,
                name="old",
                description="",
                definition={"steps": [], "context": {}},
                input_data={"order": 7},
                context=ctx1,
                step_outputs={"a": out_a, "gate": out_gate},
                status="completed",
                current_step=2,
                created_by="system",
                trace_context={},
                engine_errors=0,
                created_at=now,
                updated_at=now,
            )
        )
        for run_id, name, output in ((1, "a", out_a), (2, "gate", out_gate)):
            conn.execute(
                tables["step_runs"]
                .insert()
                .values(
                    id=run_id,
                    workflow_id=workflow_id,
                    step_index=run_id - 1,
                    step_name=name,
                    step_type="tool",
                    status="completed",
                    attempt=1,
                    output=output,
                    idempotency_key=f"{workflow_id}/{run_id}",
                    started_at=now,
                    finished_at=now,
                )
            )
        conn.execute(
            tables["workflow_checkpoints"]
            .insert()
            .values(
                workflow_id=workflow_id,
                name="after:a",
                description="",
                step_index=1,
                context=ctx0,
                step_outputs={"a": out_a},
                step_run_watermark=1,
                created_by="system",
                created_at=now + timedelta(seconds=1),
            )
        )
        for kind, before, after, data in snapshots:
            conn.execute(
                tables["workflow_events"]
                .insert()
                .values(
                    workflow_id=workflow_id,
                    event_type=kind,
                    actor="runner",
                    before=before,
                    after=after,
                    data=data,
                    created_at=now,
                )
            )

    db.upgrade()

    trail = ops.events_of(db, workflow_id)
    steps = [e for e in trail if e.event_type == "step.completed"]
    assert steps[0].after == {"current_step": 1, "step_outputs": {"a": {"$step_run": 1}}}
    # The decision taken between the two steps is kept with the second.
    assert steps[1].before == {"current_step": 1, "step_outputs": {}, "context": {}}
    assert steps[1].after == {
        "current_step": 2,
        "step_outputs": {"gate": {"$step_run": 2}},
        "context": {"approvals": {"gate": decision}},
    }
    # Every event's whole state is what the old snapshots said it was.
    for event, (_, _, old_after, _) in zip(trail, snapshots, strict=True):
        _, state = history.states_at(db, workflow_id, event.id)
        for key, value in (old_after or {}).items():
            assert state[key] == value, (event.event_type, key)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.step_outputs == {"a": out_a, "gate": out_gate}
    [checkpoint] = ops.checkpoints_of(db, workflow_id)
    assert checkpoint.step_outputs == {"a": out_a}
    # The audit trail is append-only again.
    with pytest.raises(DBAPIError, match="append-only"), db.session() as session:
        session.execute(sa.text("UPDATE workflow_events SET actor = 'mallory'"))
