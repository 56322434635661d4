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
"""

from __future__ import annotations

from datetime import datetime

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

__all__ = ["start_plain"]


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
