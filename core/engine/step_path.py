"""The runner's hot path: one step's outcome and the next step's start, in one commit.

A plain step (no checkpoint, no approval on it or on the next step) ends in
one transaction of four writes, its statements built once per dialect and run
on a SQLAlchemy Core connection (no ORM session, no unit of work, nothing
re-read):

1. INSERT the next step run, its idempotency key (``<workflow>/<run id>``)
   computed in the same statement;
2. UPDATE the workflow to the next step, only while this runner holds its
   lease, it is running and the finished run is still its current one: this
   takes the row's lock, as the general path's locking SELECT does, and
   checks what it checks;
3. UPDATE the finished run to ``completed`` with its output, only while it
   is ``running``;
4. INSERT both events (``step.completed``, ``step.started``).

On PostgreSQL the four are one statement (data-modifying CTEs,
``core.engine.pg_queries.STEP``), after one that locks the workflow's row, draws the next
run's id and reads the trail's head (to seal the two events). The step
statement writes all or nothing (every condition is checked by its first CTE),
so it is sent with its COMMIT in one round trip (psycopg's pipeline mode): a
step is two round trips. It also draws a run id for the step after; with it
and the head its events left (``Ahead``), the next step's lock needs no reply
before the step statement: both and the COMMIT go out in one pipeline, one
round trip, the step statement checking in a snapshot taken under the lock
that the head has not moved. On SQLite (in-process, no round trips) they are four
statements after BEGIN IMMEDIATE, and the head is read by a fifth.

When 2 or 3 matches no row (the lease was lost, the workflow was paused,
cancelled or rolled back under us, or another writer appended to the
workflow's trail while the lock was awaited) nothing of this attempt is kept
(SQLite rolls back; PostgreSQL's statement wrote nothing and its COMMIT only
lets go of the lock) and the caller takes the general path, which re-reads the
rows under the lock and decides. A retry after an outage that hid
a successful commit finds the workflow moved on and drops the outcome the
same way, so an outcome is never applied twice. The commit is durable, as
every step outcome's: the next step's action runs only after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert, Update

from core.base.trail_hash import GENESIS
from core.engine import pg_queries as sql
from core.engine.pipelined import execute_and_commit
from core.records.trail import seal_event_rows
from core.store.tables import StepRun, UTCDateTime, Workflow, WorkflowEvent, utcnow

if TYPE_CHECKING:
    from core.store.db import Database

# SQL NULL for an absent before/after (as ORM-appended events leave them), not JSON null.
_NULLABLE_JSON = JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


@dataclass(frozen=True)
class Ahead:
    """What the runner knows of a workflow after its own hot step (PostgreSQL): the
    trail's head as that step's commit left it, and a run id the same statement drew
    for the next start. With it the next step skips the read of both: its locking
    statement goes out with it in one round trip, and its first CTE checks, in a
    snapshot taken under the lock, that the head has not moved since."""

    head: tuple[int, str]
    next_id: int


@dataclass(frozen=True)
class NextStart:
    """The step run the hot path inserted: its id and idempotency key, and the
    workflow's context as the same statement left it (another actor may have
    merged into it between steps; the next step's templates read it)."""

    run_id: int
    key: str
    context: dict[str, Any]
    ahead: Ahead | None = None


class StepQueries:
    """The hot path's statements for one dialect, built once (SQLAlchemy caches their
    compiled form); every value is a bound parameter."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.insert_run = _insert_run()
        self.fix_key: Update = (
            update(StepRun).where(StepRun.id == bindparam("run_id")).values(idempotency_key=bindparam("key"))
        )
        self.advance_workflow: Update = (
            update(Workflow)
            .where(
                Workflow.id == bindparam("workflow_id"),
                Workflow.lease_owner == bindparam("runner_id"),
                Workflow.status == "running",
                Workflow.current_step == bindparam("index"),
                Workflow.current_step_run_id == bindparam("run_id"),
            )
            .values(
                current_step=bindparam("next_index"),
                current_step_run_id=bindparam("next_run_id"),
                updated_at=bindparam("now"),
                engine_errors=0,
            )
            .returning(Workflow.context)
        )
        self.complete_run: Update = (
            update(StepRun)
            .where(StepRun.id == bindparam("run_id"), StepRun.status == "running")
            .values(status="completed", output=bindparam("output"), finished_at=bindparam("now"))
        )
        self.insert_events: Insert = insert(WorkflowEvent).values(
            workflow_id=bindparam("workflow_id"),
            event_type=bindparam("event_type"),
            actor=bindparam("actor"),
            step_name=bindparam("step_name"),
            before=bindparam("before", type_=_NULLABLE_JSON),
            after=bindparam("after", type_=_NULLABLE_JSON),
            data=bindparam("data"),
            created_at=bindparam("created_at"),
            trail_chain=bindparam("trail_chain"),
            trail_seq=bindparam("trail_seq"),
            trail_prev=bindparam("trail_prev"),
            trail_hash=bindparam("trail_hash"),
        )


def _insert_run() -> Insert:
    """SQLite: INSERT a first attempt's run with its key in one statement, RETURNING
    (id, key). Writers are serialised (BEGIN IMMEDIATE), so a new row gets the highest
    id plus one, which the INSERT computes (and the caller checks)."""
    values = {
        "workflow_id": bindparam("workflow_id", type_=String()),
        "step_index": bindparam("step_index", type_=Integer()),
        "step_name": bindparam("step_name", type_=String()),
        "step_type": bindparam("step_type", type_=String()),
        "status": bindparam("status", type_=String()),
        "attempt": bindparam("attempt", type_=Integer()),
        "started_at": bindparam("started_at", type_=UTCDateTime()),
        "executed_by": bindparam("executed_by", type_=String()),
    }
    next_id = select(func.coalesce(func.max(StepRun.id), 0) + 1).scalar_subquery()
    return (
        insert(StepRun)
        .values(**values, idempotency_key=bindparam("prefix", type_=String()) + cast(next_id, String))
        .returning(StepRun.id, StepRun.idempotency_key)
    )


_QUERIES: dict[bool, StepQueries] = {}


def queries(postgres: bool) -> StepQueries:
    found = _QUERIES.get(postgres)
    if found is None:
        found = _QUERIES[postgres] = StepQueries(postgres)
    return found


def insert_first_run(
    conn: Connection,
    q: StepQueries,
    *,
    workflow_id: str,
    index: int,
    step_name: str,
    step_type: str,
    runner_id: str,
    now: datetime,
) -> NextStart:
    """INSERT a step's first run (status ``running``): its id and idempotency key."""
    prefix = f"{workflow_id}/"
    row = conn.execute(
        q.insert_run,
        {
            "workflow_id": workflow_id,
            "step_index": index,
            "step_name": step_name,
            "step_type": step_type,
            "status": "running",
            "attempt": 1,
            "started_at": now,
            "executed_by": runner_id,
            "prefix": prefix,
        },
    ).one()
    run_id, key = int(row[0]), str(row[1])
    if key != f"{prefix}{run_id}":  # never expected; kept right if it happens
        key = f"{prefix}{run_id}"
        conn.execute(q.fix_key, {"run_id": run_id, "key": key})
    return NextStart(run_id, key, {})


@dataclass(frozen=True)
class Finished:
    """The step that finished, as the hot path records it."""

    workflow_id: str
    index: int
    name: str
    run_id: int
    attempt: int
    output: dict[str, Any]


def started_data(run_id: int, index: int, step_type: str, key: str) -> dict[str, Any]:
    """A first attempt's ``step.started`` data, as the general path records it."""
    return {"step_run_id": run_id, "index": index, "type": step_type, "idempotency_key": key, "attempt": 1}


def event_row(
    event_type: str,
    workflow_id: str,
    runner_id: str,
    step_name: str | None,
    now: datetime,
    data: dict[str, Any],
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``workflow_events`` row written by the runner's paths, unsealed (as the
    general path's ``append_event`` would record it)."""
    return {
        "workflow_id": workflow_id,
        "actor": runner_id,
        "created_at": now,
        "event_type": event_type,
        "step_name": step_name,
        "before": before,
        "after": after,
        "data": data,
    }


def completed_row(
    done: Finished, runner_id: str, now: datetime, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """The ``step.completed`` row of ``done``."""
    data = {"step_run_id": done.run_id, "attempt": done.attempt}
    return event_row("step.completed", done.workflow_id, runner_id, done.name, now, data, before, after)


def _step_events(
    done: Finished,
    runner_id: str,
    next_name: str,
    now: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
    started: dict[str, Any],
) -> list[dict[str, Any]]:
    """The two events of a step's outcome and the next start, as rows."""
    return [
        completed_row(done, runner_id, now, before, after),
        event_row("step.started", done.workflow_id, runner_id, next_name, now, started),
    ]


def complete_and_start(
    conn: Connection,
    q: StepQueries,
    runner_id: str,
    done: Finished,
    next_name: str,
    next_type: str,
    now: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
    ahead: Ahead | None = None,
) -> NextStart | None:
    """The step's outcome and the next start (see the module's docstring), in ``conn``'s
    transaction. ``ahead``: what the previous hot step left known (PostgreSQL), which
    saves a round trip.

    None when the workflow or the run is no longer as the caller left it: the
    caller must roll the transaction back and take the general path.
    """
    if q.postgres:
        where = {
            "workflow_id": done.workflow_id,
            "runner_id": runner_id,
            "index": done.index,
            "run_id": done.run_id,
        }
        if ahead is not None:
            next_id, head = ahead.next_id, ahead.head
        else:
            locked = conn.exec_driver_sql(sql.LOCK_NEXT_ID_AND_HEAD, where).first()
            if locked is None:
                return None
            next_id = int(locked[0])
            head = (int(locked[1]), str(locked[2])) if locked[1] is not None else (0, GENESIS)
        prefix = f"{done.workflow_id}/"
        events = _step_events(
            done,
            runner_id,
            next_name,
            now,
            before,
            after,
            started_data(next_id, done.index + 1, next_type, f"{prefix}{next_id}"),
        )
        seal_event_rows(conn, done.workflow_id, events, head=head)
        row = _step_and_commit(
            conn,
            [] if ahead is None else [(sql.LOCK_ONLY, where)],
            {
                **outcome_params(done, runner_id, now, head[0], events[0]),
                "next_id": next_id,
                "started_data": events[1]["data"],
                "seq_started": events[1]["trail_seq"],
                "prev_started": events[1]["trail_prev"],
                "hash_started": events[1]["trail_hash"],
                "next_name": next_name,
                "next_type": next_type,
                "prefix": prefix,
            },
        )
        if row is None:
            return None
        after_step = Ahead((events[1]["trail_seq"], events[1]["trail_hash"]), int(row[3]))
        return NextStart(int(row[0]), str(row[1]), dict(row[2] or {}), after_step)
    started = insert_first_run(
        conn,
        q,
        workflow_id=done.workflow_id,
        index=done.index + 1,
        step_name=next_name,
        step_type=next_type,
        runner_id=runner_id,
        now=now,
    )
    moved = conn.execute(
        q.advance_workflow,
        {
            "workflow_id": done.workflow_id,
            "runner_id": runner_id,
            "index": done.index,
            "run_id": done.run_id,
            "next_index": done.index + 1,
            "next_run_id": started.run_id,
            "now": now,
        },
    ).first()
    if moved is None:
        return None
    if conn.execute(q.complete_run, {"run_id": done.run_id, "output": done.output, "now": now}).rowcount != 1:
        return None
    events = _step_events(
        done,
        runner_id,
        next_name,
        now,
        before,
        after,
        started_data(started.run_id, done.index + 1, next_type, started.key),
    )
    seal_event_rows(conn, done.workflow_id, events)
    conn.execute(q.insert_events, events)
    return NextStart(started.run_id, started.key, dict(moved[0] or {}))


def outcome_params(
    done: Finished, runner_id: str, now: datetime, head_seq: int, completed: dict[str, Any]
) -> dict[str, Any]:
    """PostgreSQL: the parameters the step and finish statements share: the guard's
    (``PG_STEP_GUARD``), the finished run's outcome and its sealed ``step.completed``."""
    return {
        "head_seq": head_seq,
        "workflow_id": done.workflow_id,
        "runner_id": runner_id,
        "index": done.index,
        "run_id": done.run_id,
        "next_index": done.index + 1,
        "now": now,
        "output": done.output,
        "name": done.name,
        "before": completed["before"],
        "after": completed["after"],
        "completed_data": completed["data"],
        "chain": completed["trail_chain"],
        "seq_done": completed["trail_seq"],
        "prev_done": completed["trail_prev"],
        "hash_done": completed["trail_hash"],
    }


def _step_and_commit(
    conn: Connection, before: list[tuple[str, dict[str, Any]]], params: dict[str, Any]
) -> tuple[Any, ...] | None:
    """PostgreSQL: ``before`` (the lock, when the head was known), ``sql.STEP`` and
    its COMMIT sent together (``core.engine.pipelined``): the row it returned, or None."""
    rows = execute_and_commit(conn, sql.STEP, params, jsonb=sql.STEP_JSON, before=before)
    return rows[0] if rows else None


_NOW = bindparam("now", type_=UTCDateTime())
_ANOTHER_WAITING = (
    select(Workflow.id)
    .where(
        Workflow.status == "running",
        Workflow.runnable_at <= _NOW,
        or_(Workflow.lease_owner.is_(None), Workflow.lease_expires_at < _NOW),
        Workflow.id != bindparam("workflow_id", type_=String()),
    )
    .limit(1)
)


def another_is_waiting(db: Database, workflow_id: str) -> bool:
    """Whether another workflow is claimable now (one read on the claim index): a
    claim that used up its slice hands its workflow back only then."""
    with db.read() as session:
        found = session.execute(_ANOTHER_WAITING, {"now": utcnow(), "workflow_id": workflow_id}).first()
    return found is not None
