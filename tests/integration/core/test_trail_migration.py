"""Migration 0012 chains the events and votes written before it (backfill), in the
order they were written, so ``audit verify`` covers them; the audit tables are
append-only again afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from core.records.trail_verify import verify
from core.store.db import Database
from core.store.migrate import upgrade
from tests.conftest import _pg_admin, _url_for


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path}/old.db")
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


def test_rows_written_before_the_trail_are_chained_by_the_migration(empty_db: Database) -> None:
    db = empty_db
    upgrade(db, "0011")  # the revision before the trail
    meta = sa.MetaData()
    tables = {
        name: sa.Table(name, meta, autoload_with=db.engine)
        for name in ("workflows", "workflow_events", "approval_requests", "approval_responses")
    }
    t0 = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)
    workflow_id, approval_id = str(uuid.uuid4()), str(uuid.uuid4())
    with db.engine.begin() as conn:
        conn.execute(
            tables["workflows"]
            .insert()
            .values(
                id=workflow_id,
                name="old",
                description="",
                definition={"steps": []},
                input_data={},
                context={},
                status="completed",
                current_step=1,
                created_by="system",
                trace_context={},
                engine_errors=0,
                created_at=t0,
                updated_at=t0,
            )
        )
        conn.execute(
            tables["approval_requests"]
            .insert()
            .values(
                id=approval_id,
                workflow_id=workflow_id,
                title="pay?",
                description="",
                approval_type="binary",
                status="approved",
                requested_by="system",
                decided_by="system",  # as the approval.decided event below says
                decided_at=t0 + timedelta(seconds=3),
                approvers=["boss@example.com"],
                threshold=1,
                config={},
                context_data={},
                proposed_action={},
                response_schema={},
                ui_schema={},
                level=0,
                escalations=0,
                created_at=t0,
                updated_at=t0,
            )
        )
        for i, kind in enumerate(
            ["workflow.created", "approval.requested", "approval.responded", "approval.decided"]
        ):
            conn.execute(
                tables["workflow_events"]
                .insert()
                .values(
                    workflow_id=workflow_id,
                    approval_id=approval_id if i else None,
                    event_type=kind,
                    actor="system",
                    data={"i": i, "amount": 1e20 if i == 3 else 1.5},
                    created_at=t0 + timedelta(seconds=i),
                )
            )
        conn.execute(
            tables["approval_responses"]
            .insert()
            .values(
                approval_id=approval_id,
                approver="boss@example.com",
                level=0,
                decision="approve",
                channel="dashboard",
                comment="",
                data={},
                created_at=t0 + timedelta(seconds=1.5),
            )
        )
        conn.execute(
            tables["workflow_events"]
            .insert()
            .values(event_type="user.created", actor="cli:ops", data={}, created_at=t0)
        )

    db.upgrade()

    reports = {r.chain: r for r in verify(db, "system")}
    assert set(reports) == {workflow_id, "platform"}
    assert reports[workflow_id].intact and reports[workflow_id].entries == 5
    assert reports["platform"].intact and reports["platform"].entries == 1
    with db.read() as session:
        vote_seq = session.execute(sa.text("SELECT trail_seq FROM approval_responses")).scalar()
    assert vote_seq == 3  # between the request (1 s) and the event recording it (2 s)
    # Append-only again: the triggers were restored.
    for table in ("workflow_events", "approval_responses"):
        with pytest.raises(DBAPIError, match="append-only"), db.session() as session:
            session.execute(sa.text(f"UPDATE {table} SET trail_hash = 'x'"))
    # New entries continue the chain the migration started.
    from core.records import rows as store

    with db.session() as session:
        store.append_event(session, "note.added", "system", workflow_id=workflow_id)
    [report] = verify(db, "system", workflow_id)
    assert report.intact and report.entries == 6
