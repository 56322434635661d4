"""The runner's finish path: the last step's outcome and the workflow's completion, in one commit.

When the last step of a workflow is plain (no checkpoint, no approval on it),
its outcome ends the workflow in one transaction of Core statements, as the
hot path (``core.engine.step_path``) ends the steps before it, instead of the
general path's ORM unit of work. It writes what the general path writes:

* the run ``completed`` with its output;
* the workflow ``completed`` past its last step, finished, its lease let go;
* two events: ``step.completed`` (what changed, as the hot path records it)
  and ``workflow.status_changed`` (running to completed);
* the ``workflow.finished`` webhook's outbox rows, one per endpoint
  (``core.outbox.writer.webhook_rows``), which the general path's flush hook
  would queue.

On PostgreSQL that is one statement (data-modifying CTEs, all or nothing, every
condition in the first, the guard the step statement uses) sent with its COMMIT
(``core.engine.pipelined``), after what it needs: the trail's head and the
webhook channel's stored settings.

* When the runner knows both (the head its last statement left, ``Ahead``; the
  settings it read with the workflow's start, ``WebhookRow``), the locking
  statement goes out in the same pipeline: one round trip. The statement then
  also checks, in a snapshot taken under the lock, that the settings it built
  the outbox rows from are still those stored; if they changed, it writes
  nothing.
* Otherwise a locking statement reads both first: two round trips.

On SQLite the writes are separate statements after BEGIN IMMEDIATE. When the
workflow, the run or the webhook settings are no longer as the caller left
them, nothing is kept and the caller takes the general path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from core.base.trail_hash import GENESIS
from core.engine import pg_queries as sql
from core.engine.pipelined import execute_and_commit
from core.engine.step_path import (
    Ahead,
    Finished,
    completed_row,
    event_row,
    outcome_params,
    queries,
)
from core.outbox.settings import endpoints_of, stored_settings
from core.outbox.writer import wake_dispatcher, webhook_rows
from core.records.trail import seal_event_rows
from core.store.tables import ChannelConfiguration, Notification, Workflow, WorkflowEvent, new_id

__all__ = ["WebhookRow", "complete_and_finish"]

_FINISHED = "completed"
# The transition's event, as ``core.records.rows.transition_workflow`` records it.
_STATUS_BEFORE = {"status": "running"}
_STATUS_AFTER = {"status": _FINISHED}


@dataclass(frozen=True)
class WebhookRow:
    """The webhook channel's stored (enabled, settings) as read with a workflow's row;
    ``row`` None: no row was stored. The finish path builds the ``workflow.finished``
    outbox rows from it without reading it again, and its statement checks it."""

    row: tuple[bool, Any] | None  # the settings as stored (compared as stored)

    @staticmethod
    def read(enabled: Any, settings: Any) -> WebhookRow:
        """From a LEFT JOIN's two columns (``enabled``, never NULL in a row: none)."""
        return WebhookRow(None if enabled is None else (bool(enabled), settings))

    def stored_as(self) -> list[Any] | None:
        """What FINISH_UNREAD compares with the stored row (JSON null: none)."""
        return None if self.row is None else [self.row[0], self.row[1]]


def complete_and_finish(
    conn: Connection,
    postgres: bool,
    runner_id: str,
    done: Finished,
    now: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    ahead: Ahead | None = None,
    hooks: WebhookRow | None = None,
) -> tuple[int, WebhookRow | None] | None:
    """The last step's outcome and the workflow's completion (see the module's docstring),
    in ``conn``'s transaction: how many outbox rows were queued and the webhook row
    they were built from, or None when the workflow, the run or the webhook settings
    are no longer as the caller left them (the caller must roll the transaction back
    and take the general path). ``ahead`` and ``hooks``: what the runner knows
    (PostgreSQL), which saves the locking read."""
    where = {
        "workflow_id": done.workflow_id,
        "runner_id": runner_id,
        "index": done.index,
        "run_id": done.run_id,
    }
    if postgres:
        lock: list[tuple[str, dict[str, Any]]] = []
        statement, checked = sql.FINISH, {}
        if ahead is not None and hooks is not None:
            head = ahead.head
            lock = [(sql.LOCK_ONLY, where)]
            statement, checked = sql.FINISH_UNREAD, {"hooks_seen": hooks.stored_as()}
        else:
            locked = conn.exec_driver_sql(sql.LOCK_HEAD_AND_WEBHOOKS, where).first()
            if locked is None:
                return None
            head = (int(locked[0]), str(locked[1])) if locked[0] is not None else (0, GENESIS)
            hooks = WebhookRow.read(locked[2], locked[3])
        events, notes = _rows(done, runner_id, now, before, after, stored_settings(hooks.row))
        seal_event_rows(conn, done.workflow_id, events, head=head)
        finished = execute_and_commit(
            conn,
            statement,
            {**_pg_params(done, runner_id, now, head[0], events, notes), **checked},
            jsonb=(*sql.FINISH_JSON, *checked),
            before=lock,
        )
        return (len(notes), hooks) if finished else None
    moved = conn.execute(
        update(Workflow)
        .where(
            Workflow.id == done.workflow_id,
            Workflow.lease_owner == runner_id,
            Workflow.status == "running",
            Workflow.current_step == done.index,
            Workflow.current_step_run_id == done.run_id,
        )
        .values(
            status=_FINISHED,
            current_step=done.index + 1,
            current_step_run_id=None,
            updated_at=now,
            finished_at=now,
            runnable_at=None,
            lease_owner=None,
            lease_expires_at=None,
            engine_errors=0,
        )
    )
    if moved.rowcount != 1:
        return None
    if (
        conn.execute(
            queries(False).complete_run, {"run_id": done.run_id, "output": done.output, "now": now}
        ).rowcount
        != 1
    ):
        return None
    stored = conn.execute(
        select(ChannelConfiguration.enabled, ChannelConfiguration.settings).where(
            ChannelConfiguration.channel == "webhook"
        )
    ).first()
    settings = stored_settings(None if stored is None else (stored[0], stored[1]))
    events, notes = _rows(done, runner_id, now, before, after, settings)
    seal_event_rows(conn, done.workflow_id, events)
    conn.execute(queries(False).insert_events, events)
    if notes:
        conn.execute(Notification.__table__.insert(), notes)  # type: ignore[attr-defined]
    return len(notes), None


def after_commit(queued: int) -> None:
    """Once the finish committed: wake the in-process dispatcher for the outbox rows."""
    if queued:
        wake_dispatcher()


def _rows(
    done: Finished,
    runner_id: str,
    now: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
    hooks: tuple[bool, dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Both events (unsealed) and the webhook's outbox rows."""
    events = [
        completed_row(done, runner_id, now, before, after),
        event_row(
            "workflow.status_changed",
            done.workflow_id,
            runner_id,
            None,
            now,
            {},
            _STATUS_BEFORE,
            _STATUS_AFTER,
        ),
    ]
    urls = endpoints_of(*hooks)
    notes = []
    if urls:
        status_event = WorkflowEvent(**events[1])  # never added to a session: the body's source
        notes = [
            {**row, "id": new_id(), "next_attempt_at": now, "created_at": now, "updated_at": now}
            for row in webhook_rows(None, status_event, "workflow.finished", urls)
        ]
    return events, notes


def _pg_params(
    done: Finished,
    runner_id: str,
    now: datetime,
    head_seq: int,
    events: list[dict[str, Any]],
    notes: list[dict[str, Any]],
) -> dict[str, Any]:
    completed, status = events
    return {
        **outcome_params(done, runner_id, now, head_seq, completed),
        "status_before": status["before"],
        "status_after": status["after"],
        "status_data": status["data"],
        "seq_status": status["trail_seq"],
        "prev_status": status["trail_prev"],
        "hash_status": status["trail_hash"],
        "notes": [
            {key: note[key] for key in ("id", "kind", "channel", "recipient", "payload")} for note in notes
        ],
    }
