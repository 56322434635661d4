"""Read sessions (``Database.read``): on PostgreSQL outside a transaction, so closing one
costs no ROLLBACK round trip; on both backends they never write, whatever is changed
on the objects they hold."""

from __future__ import annotations

import pytest
from psycopg import pq
from sqlalchemy import func, select

from core.engine import workflows as ops
from core.store.db import Database
from core.store.tables import Workflow, WorkflowEvent
from tests.helpers.engine import start

STEPS = [{"name": "s", "type": "tool", "tool": "noop"}]


@pytest.mark.postgres
def test_a_read_on_postgresql_leaves_no_transaction_to_roll_back(pg_db: Database) -> None:
    workflow_id = start(pg_db, STEPS, name="read me")
    with pg_db.read() as session:
        assert session.scalar(select(Workflow.name).where(Workflow.id == workflow_id)) == "read me"
        assert (session.scalar(select(func.count()).select_from(WorkflowEvent)) or 0) >= 1
        driver = session.connection().connection.dbapi_connection
        assert driver is not None
        # Autocommit: each SELECT ran on its own, and nothing is left open for the
        # pool to roll back when the session closes.
        assert driver.info.transaction_status == pq.TransactionStatus.IDLE
    with pg_db.session() as session:  # a writing session still runs in a transaction
        session.scalar(select(Workflow.name).where(Workflow.id == workflow_id))
        driver = session.connection().connection.dbapi_connection
        assert driver is not None
        assert driver.info.transaction_status == pq.TransactionStatus.INTRANS


def test_a_read_session_never_writes_what_its_objects_were_changed_to(db: Database) -> None:
    """Changing an object read in a read session, then reading again in it (which would
    flush the change first in a writing session), writes nothing."""
    workflow_id = start(db, STEPS, name="as stored")
    with db.read() as session:
        workflow = session.scalars(select(Workflow).where(Workflow.id == workflow_id)).one()
        workflow.name = "changed in a read"
        session.scalar(select(func.count()).select_from(WorkflowEvent))  # no flush before it
    assert ops.get_workflow(db, workflow_id).name == "as stored"
