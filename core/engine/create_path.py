"""A new workflow's row and first events written with Core statements.

``create_workflow`` (core.engine.workflows) checks who may start and what is
started, then hands the workflow it built here. Through the ORM this was a
flush of two INSERTs, a NOTIFY and the COMMIT: four round trips after the
check. Here:

* PostgreSQL: one statement (data-modifying CTEs) inserts the row and its
  events and, for a started workflow, notifies the runners. The checks read
  without a BEGIN, so it goes out as one implicit transaction committed by its
  pipeline's Sync (``core.engine.pipelined``): one round trip after the check.
* SQLite: the two INSERTs; the session's commit wakes the runners of this
  process (``Database.notify_runnable``).

A value longer than its column is refused in words first (``TooLong``), as
the ORM's flush refuses it (``core.store.lengths``). The row is new under an
id drawn for it, so its trail begins here with no lock
to take and no head to read (``core.records.trail``). Every column is written
from the workflow object, its unset ones filled with their column defaults
first, so the object returned is exactly the stored row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import JSON, Table, insert, inspect
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.sql.elements import Null

from core.base.errors import TooLong
from core.base.trail_hash import EVENT_FIELDS, GENESIS
from core.engine.pipelined import execute_and_commit
from core.records.rows import event_values
from core.records.trail import seal_event_rows
from core.store.lengths import too_long
from core.store.tables import Workflow, WorkflowEvent
from core.store.wakeup import CHANNEL

if TYPE_CHECKING:
    from core.store.db import Database

__all__ = ["insert_workflow"]

# (attribute, column) of every column of ``workflows``, in table order.
_COLUMNS = [(attr.key, attr.columns[0]) for attr in inspect(Workflow).column_attrs]
_WORKFLOW_JSON = tuple(f"w_{column.name}" for _, column in _COLUMNS if isinstance(column.type, JSON))
# What the trail's hash covers of an event, then its four trail columns.
_EVENT_COLUMNS = (*EVENT_FIELDS, "trail_chain", "trail_seq", "trail_prev", "trail_hash")
_EVENT_JSON = ("before", "after", "data")


def _created_sql(events: int, notify: bool) -> str:
    """The PostgreSQL statement for a row with ``events`` events (see the docstring)."""
    names = ", ".join(column.name for _, column in _COLUMNS)
    values = ", ".join(f"%(w_{column.name})s" for _, column in _COLUMNS)
    logged = "\n    UNION ALL\n".join(
        "    SELECT "
        # Typed: a NULL in a UNION would otherwise be text, which is not cast to JSONB.
        + ", ".join(
            f"%(e{n}_{name})s" + ("::jsonb" if name in _EVENT_JSON else "") for name in _EVENT_COLUMNS
        )
        + " FROM created"
        for n in range(events)
    )
    return (
        f"WITH created AS (\n    INSERT INTO workflows ({names})\n    VALUES ({values})\n    RETURNING id\n"
        f"), logged AS (\n    INSERT INTO workflow_events ({', '.join(_EVENT_COLUMNS)})\n{logged}\n)\n"
        + ("SELECT pg_notify(%(channel)s, id) FROM created" if notify else "SELECT id FROM created")
    )


# The statements by (number of events, notify): a workflow created, or created and started.
_CREATED = {(1, False): _created_sql(1, False), (2, True): _created_sql(2, True)}


def _complete(workflow: Workflow) -> dict[str, Any]:
    """Fill ``workflow``'s unset columns with their defaults; its row, by column name."""
    row = {}
    for key, column in _COLUMNS:
        value = getattr(workflow, key)
        if value is None and column.default is not None:
            default = column.default
            value = default.arg(None) if default.is_callable else default.arg
        # Set even when None: an attribute never set would be unloaded once detached.
        setattr(workflow, key, value)
        row[column.name] = value
    return row


def insert_workflow(
    session: Session, db: Database, workflow: Workflow, events: list[dict[str, Any]], *, started: bool
) -> None:
    """Insert ``workflow`` (not added to ``session``) and its ``events`` (``event_values``
    rows, in order) in ``session``'s transaction; a ``started`` workflow wakes the
    runners. On PostgreSQL the transaction has been committed when this returns. The
    object is then detached, as a row loaded and its session closed."""
    row = _complete(workflow)
    if problems := too_long(workflow):  # what the ORM's flush would refuse (core.store.lengths)
        raise TooLong(problems)
    conn = session.connection()
    seal_event_rows(conn, workflow.id, events, head=(0, GENESIS))
    if db.is_postgres:
        sql = _CREATED.get((len(events), started))
        if sql is None:
            raise ValueError(f"no statement for a workflow with {len(events)} events (started: {started})")
        params: dict[str, Any] = {f"w_{name}": value for name, value in row.items()}
        jsonb = list(_WORKFLOW_JSON)
        for n, event in enumerate(events):
            for name in _EVENT_COLUMNS:
                value = event.get(name)
                params[f"e{n}_{name}"] = None if name in _EVENT_JSON and _is_sql_null(value) else value
            jsonb += [f"e{n}_{name}" for name in _EVENT_JSON if params[f"e{n}_{name}"] is not None]
        params["channel"] = CHANNEL
        execute_and_commit(conn, sql, params, jsonb=jsonb)
        if started:  # the statement notified other processes; this one's runners at commit
            db.wakeup.wake_on_commit(session)
    else:
        session.execute(insert(cast(Table, Workflow.__table__)).values(row))
        session.execute(insert(WorkflowEvent).values(events))
        if started:
            db.notify_runnable(session, workflow.id)
    make_transient_to_detached(workflow)


def _is_sql_null(value: Any) -> bool:
    return value is None or isinstance(value, Null)


def created_events(workflow: Workflow, input_data: dict[str, Any], *, started: bool) -> list[dict[str, Any]]:
    """The events of a workflow just created (and ``started``), as ``append_event`` wrote
    them: ``workflow.created``, then ``workflow.status_changed`` to running."""
    actor, now = workflow.created_by, workflow.created_at
    events = [
        event_values(
            "workflow.created",
            actor,
            workflow_id=workflow.id,
            after={"status": "pending"},
            data={"name": workflow.name, "input": input_data},
            created_at=now,
        )
    ]
    if started:
        events.append(
            event_values(
                "workflow.status_changed",
                actor,
                workflow_id=workflow.id,
                before={"status": "pending"},
                after={"status": "running"},
                data={},
                created_at=now,
            )
        )
    return events
