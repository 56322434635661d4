"""A workflow's creation (core.engine.create_path) on SQLite and PostgreSQL: the row
stored is the object returned, its events open an intact trail, a started workflow
wakes runners in this process and (PostgreSQL) in others at commit, and a name the
row cannot hold is refused in words with nothing written."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import func, inspect, select

from core.base.errors import TooLong
from core.engine import workflows as ops
from core.records.trail_verify import require_intact, verify
from core.store.db import Database
from core.store.tables import User, Workflow, WorkflowEvent
from core.store.wakeup import CHANNEL
from tests.helpers.engine import REQUESTER, account_exists, accounts, event_types, events

OPS = "ops@example.com"
DEFINITION = {
    "name": "Pay a supplier",
    "context": {"currency": "EUR"},
    "steps": [{"name": "a", "type": "checkpoint"}],
}


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    accounts(db, "admin", OPS)
    accounts(db, "service", REQUESTER)


def _columns(workflow: Workflow) -> dict[str, Any]:
    return {attr.key: getattr(workflow, attr.key) for attr in inspect(Workflow).column_attrs}


@pytest.mark.parametrize("start", [True, False])
def test_the_stored_row_is_the_workflow_returned(db: Database, start: bool) -> None:
    created = ops.create_workflow(
        db, DEFINITION, input_data={"amount": 120}, created_by=REQUESTER, start=start, description="Q3"
    )
    with db.read() as session:
        stored = session.scalars(select(Workflow).where(Workflow.id == created.id)).one()
        assert _columns(stored) == _columns(created)
    assert created.step_outputs == {}  # readable on the detached object
    assert created.status == ("running" if start else "pending")
    assert created.context == {"currency": "EUR", "amount": 120}
    assert (created.runnable_at is not None, created.started_at is not None) == (start, start)
    assert created.current_step == 0 and created.engine_errors == 0 and created.lease_owner is None


def test_a_started_workflow_records_its_creation_and_start_in_an_intact_trail(db: Database) -> None:
    workflow_id = ops.create_workflow(db, DEFINITION, input_data={"amount": 5}, created_by=REQUESTER).id
    assert event_types(db, workflow_id) == ["workflow.created", "workflow.status_changed"]
    [created] = events(db, workflow_id, "workflow.created")
    [started] = events(db, workflow_id, "workflow.status_changed")
    assert (created.actor, created.before, created.after) == (REQUESTER, None, {"status": "pending"})
    assert created.data == {"name": "Pay a supplier", "input": {"amount": 5}}
    assert (started.before, started.after, started.data) == ({"status": "pending"}, {"status": "running"}, {})
    assert [created.trail_seq, started.trail_seq] == [1, 2]
    require_intact(verify(db, OPS, workflow_id))


def test_a_workflow_created_without_starting_records_only_its_creation(db: Database) -> None:
    workflow_id = ops.create_workflow(db, DEFINITION, created_by=REQUESTER, start=False).id
    assert event_types(db, workflow_id) == ["workflow.created"]
    started = ops.start_workflow(db, workflow_id, OPS)  # the trail goes on from the created entry
    assert started.status == "running"
    require_intact(verify(db, OPS, workflow_id))


@pytest.mark.parametrize("start", [True, False])
def test_only_a_started_workflow_wakes_this_process_runners(db: Database, start: bool) -> None:
    seen = db.wakeup.signal.generation
    ops.create_workflow(db, DEFINITION, created_by=REQUESTER, start=start)
    assert (db.wakeup.signal.generation != seen) == start


def test_a_started_workflow_notifies_other_processes_at_commit(db: Database, db_url: str) -> None:
    if not db.is_postgres:
        pytest.skip("NOTIFY: PostgreSQL (SQLite runners in other processes poll)")
    conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        quiet = ops.create_workflow(db, DEFINITION, created_by=REQUESTER, start=False).id
        started = ops.create_workflow(db, DEFINITION, created_by=REQUESTER).id
        heard = [note.payload for note in listener.notifies(timeout=5, stop_after=1)]
        heard += [note.payload for note in listener.notifies(timeout=0.5)]
    assert heard == [started]
    assert quiet not in heard


def test_a_name_longer_than_the_row_holds_is_refused_in_words_with_nothing_written(db: Database) -> None:
    def counts() -> tuple[int, int]:
        with db.read() as session:
            return (
                session.scalar(select(func.count()).select_from(Workflow)) or 0,
                session.scalar(select(func.count()).select_from(WorkflowEvent)) or 0,
            )

    before = counts()
    for name, definition in (("n" * 201, DEFINITION), (None, {**DEFINITION, "name": "d" * 300})):
        with pytest.raises(TooLong, match=r"name: \d+ characters, at most 200"):
            ops.create_workflow(db, definition, name=name, created_by=REQUESTER)
    assert counts() == before
    assert ops.create_workflow(db, DEFINITION, name="n" * 200, created_by=REQUESTER).name == "n" * 200


def test_the_connection_a_creation_used_goes_back_to_the_pool_in_a_transaction(db: Database) -> None:
    """On PostgreSQL a creation reads without a BEGIN (autocommit): the connection it used
    must not stay so, or the next writer's statements would each commit alone."""
    ops.create_workflow(db, DEFINITION, created_by=REQUESTER)
    if db.is_postgres:
        assert db.engine.pool.checkedin() == 1  # the one connection: the next writer gets it
    with pytest.raises(RuntimeError, match="refused halfway"), db.session() as session:
        session.add(User(email="ghost@example.com", role="approver"))
        session.flush()
        raise RuntimeError("refused halfway")
    assert not account_exists(db, "ghost@example.com")
