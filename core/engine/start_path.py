"""The runner's start path: a claimed workflow's plain step started in one commit, few statements.

When a claim finds its workflow at a step that has no run yet and acts at once
(no approval, no gate, not a step done inside the transaction), the general
path would record the start through the ORM's unit of work: INSERT the run
(a flush for its id), UPDATE its idempotency key, read the trail's head,
UPDATE the workflow, INSERT the ``step.started`` event: five round trips and
the commit. This path writes the same rows with Core statements, in the
transaction that locked the workflow's row (the caller's ORM session, through
its connection; the lock holds the trail's chain, so the head read here is
current):

* PostgreSQL: one statement draws the run's id and reads the head; the event
  is sealed; one statement (data-modifying CTEs) inserts the run with its key,
  points the workflow at it and inserts the event, and is sent with its COMMIT
  (``core.engine.pipelined``). Two round trips after the lock. It also draws an
  id for the next start, which with the head it left lets the step's outcome
  skip a round trip (``core.engine.step_path.Ahead``). Nothing in it
  can match nothing: the lock is held and the caller checked the row under it.
  The first statement also reads the webhook channel's stored settings, which
  spare the workflow's finish a round trip (``core.engine.finish_path.WebhookRow``).
* SQLite: INSERT the run with its key, UPDATE the workflow, read the head,
  INSERT the event; the session's commit ends the transaction.

The caller marks the ORM workflow as committed with the new run
(``set_committed_value``), so the session has nothing left to flush.

Before that locked path, PostgreSQL tries the start without a transaction of its
own (``read_for_start``, ``start_unread``): one statement reads the row (its
version, ``xmin``), draws the run's id and reads the trail's head and the webhook
settings, unlocked and without a BEGIN; the event is sealed; then the lock and
one statement writing the same three rows go out with the pipeline's Sync, the
statement checking under the lock that the row is still the version read and
no trail entry came after the head read. Two round trips instead of the locked
path's four (BEGIN, the locking SELECT, the read, the write); one when the claim
that leased the workflow returned the same read (``sql.CLAIM``,
``core.engine.claim_queue``) and the row has not changed since. When the row
changed, or the workflow is not at a plain step's start, nothing is written and
the caller takes the locked path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection

from core.base.trail_hash import GENESIS
from core.engine import pg_queries as sql
from core.engine.finish_path import WebhookRow
from core.engine.pipelined import execute_and_commit
from core.engine.step_path import (
    Ahead,
    NextStart,
    event_row,
    insert_first_run,
    queries,
    started_data,
)
from core.records.trail import seal_event_rows
from core.store.tables import Workflow

__all__ = ["Unread", "read_for_start", "start_plain", "start_unread", "unread_of"]


def start_plain(
    conn: Connection,
    postgres: bool,
    runner_id: str,
    *,
    workflow_id: str,
    index: int,
    step_name: str,
    step_type: str,
    now: datetime,
) -> tuple[NextStart, WebhookRow | None]:
    """Start the step at ``index`` (see the module's docstring) in ``conn``'s transaction,
    which holds the workflow's row lock: its run's id and idempotency key, and (PostgreSQL)
    the webhook channel's stored settings. On PostgreSQL the transaction has been
    committed when this returns."""
    if postgres:
        drawn = conn.exec_driver_sql(sql.NEXT_ID_AND_HEAD, {"workflow_id": workflow_id}).one()
        run_id, key = int(drawn[0]), f"{workflow_id}/{int(drawn[0])}"
        head = (int(drawn[1]), str(drawn[2])) if drawn[1] is not None else (0, GENESIS)
        event = event_row(
            "step.started",
            workflow_id,
            runner_id,
            step_name,
            now,
            started_data(run_id, index, step_type, key),
        )
        seal_event_rows(conn, workflow_id, [event], head=head)
        params = {
            "run_id": run_id,
            "workflow_id": workflow_id,
            "index": index,
            "name": step_name,
            "type": step_type,
            "now": now,
            "runner_id": runner_id,
            "key": key,
            "data": event["data"],
            "chain": event["trail_chain"],
            "seq": event["trail_seq"],
            "prev": event["trail_prev"],
            "hash": event["trail_hash"],
        }
        rows = execute_and_commit(conn, sql.START, params, jsonb=("data",))
        if not rows:
            raise RuntimeError(f"Step {step_name!r} of workflow {workflow_id} could not be started.")
        # What the step's outcome needs next (the hot path): the head this start left, an id.
        ahead = Ahead((event["trail_seq"], event["trail_hash"]), int(rows[0][1]))
        return NextStart(run_id, key, {}, ahead), WebhookRow.read(drawn[3], drawn[4])
    q = queries(False)
    started = insert_first_run(
        conn,
        q,
        workflow_id=workflow_id,
        index=index,
        step_name=step_name,
        step_type=step_type,
        runner_id=runner_id,
        now=now,
    )
    conn.execute(
        update(Workflow)
        .where(Workflow.id == workflow_id)
        .values(current_step_run_id=started.run_id, updated_at=now)
    )
    data = started_data(started.run_id, index, step_type, started.key)
    event = event_row("step.started", workflow_id, runner_id, step_name, now, data)
    seal_event_rows(conn, workflow_id, [event])
    conn.execute(q.insert_events, [event])
    return started, None


@dataclass(frozen=True)
class Unread:
    """A claimed workflow's row as ``read_for_start`` read it, unlocked (PostgreSQL)."""

    workflow_id: str
    version: str  # the row's ``xmin``: START_UNREAD writes only while it is the same
    index: int
    name: str
    input_data: dict[str, Any]
    context: dict[str, Any]
    definition: dict[str, Any] | None  # None when not asked for (cached by the caller)
    # A run id drawn for the start; None unless the workflow is running under this
    # runner's lease at a step with no run yet (the start path cannot apply).
    run_id: int | None
    head: tuple[int, str]
    hooks: WebhookRow


def read_for_start(conn: Connection, runner_id: str, workflow_id: str, *, definition: bool) -> Unread | None:
    """PostgreSQL: one round trip, no lock, no BEGIN (``sql.READ_FOR_START``); None if no
    such workflow."""
    rows = execute_and_commit(
        conn,
        sql.READ_FOR_START,
        {"workflow_id": workflow_id, "runner_id": runner_id, "definition": definition},
    )
    return unread_of(workflow_id, rows[0]) if rows else None


def unread_of(workflow_id: str, row: Sequence[Any]) -> Unread:
    """An ``Unread`` from READ_FOR_START's columns (which the claim also returns:
    ``sql.CLAIM``)."""
    return Unread(
        workflow_id,
        str(row[0]),
        int(row[3]),
        str(row[5]),
        row[6] if row[6] is not None else {},
        row[7] if row[7] is not None else {},
        row[8],
        None if row[9] is None else int(row[9]),
        (int(row[10]), str(row[11])) if row[10] is not None else (0, GENESIS),
        WebhookRow.read(row[12], row[13]),
    )


def start_unread(
    conn: Connection,
    runner_id: str,
    seen: Unread,
    *,
    step_name: str,
    step_type: str,
    now: datetime,
) -> NextStart | None:
    """PostgreSQL: start the step at ``seen.index`` (its run ``seen.run_id``) with the lock
    and one statement in one round trip, if the row is still as ``seen`` (see the module's
    docstring); None, nothing written, otherwise."""
    assert seen.run_id is not None
    run_id, workflow_id = seen.run_id, seen.workflow_id
    key = f"{workflow_id}/{run_id}"
    event = event_row(
        "step.started",
        workflow_id,
        runner_id,
        step_name,
        now,
        started_data(run_id, seen.index, step_type, key),
    )
    seal_event_rows(conn, workflow_id, [event], head=seen.head)
    rows = execute_and_commit(
        conn,
        sql.START_UNREAD,
        {
            "run_id": run_id,
            "workflow_id": workflow_id,
            "xmin": seen.version,
            "head_seq": seen.head[0],
            "index": seen.index,
            "name": step_name,
            "type": step_type,
            "now": now,
            "runner_id": runner_id,
            "key": key,
            "data": event["data"],
            "chain": event["trail_chain"],
            "seq": event["trail_seq"],
            "prev": event["trail_prev"],
            "hash": event["trail_hash"],
        },
        jsonb=("data",),
        before=[(sql.LOCK_BY_ID, {"workflow_id": workflow_id})],
    )
    if not rows:
        return None
    ahead = Ahead((event["trail_seq"], event["trail_hash"]), int(rows[0][1]))
    return NextStart(run_id, key, seen.context, ahead)
