"""Batch claims: one round trip leases several runnable workflows to a runner.

``claim_workflows`` leases up to ``limit`` of the oldest runnable workflows in
one UPDATE of rows picked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite
serialises writers), so runners claiming at once take different rows instead
of queueing on one. A runner keeps what it took beyond the workflow it runs
now in a ``ClaimQueue``: the heartbeat renews those leases with the others
(one UPDATE), a claim's slice hands its workflow back when the queue is not
empty, and a runner that stops lets go of what it had not started. A runner
that dies leaves them leased until the lease runs out, as it leaves the
workflow it was running.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.sql.dml import Update

from core.engine import pg_queries as sql
from core.engine.pipelined import execute_and_commit
from core.engine.start_path import Unread, unread_of
from core.store.tables import Workflow, utcnow

if TYPE_CHECKING:
    from core.store.db import Database

# Workflows one claim may lease (COUNTERSIGN_CLAIM_BATCH). Small: what a runner
# holds but has not started waits for it (or, if it dies, for the lease to run out).
DEFAULT_CLAIM_BATCH = 4
CLAIM_BATCH_ENV = "COUNTERSIGN_CLAIM_BATCH"


def claim_batch() -> int:
    """``COUNTERSIGN_CLAIM_BATCH`` (default ``DEFAULT_CLAIM_BATCH``), at least 1."""
    raw = os.environ.get(CLAIM_BATCH_ENV, "").strip()
    try:
        return max(1, int(raw)) if raw else DEFAULT_CLAIM_BATCH
    except ValueError:
        return DEFAULT_CLAIM_BATCH


def claim_workflows(
    db: Database,
    runner_id: str,
    lease_seconds: float,
    limit: int,
    reads: dict[str, Unread] | None = None,
) -> list[str]:
    """Take the leases of up to ``limit`` runnable workflows; their ids, oldest first.
    ``reads`` (PostgreSQL): filled with what the claim read of each, for its start
    (``core.engine.start_path.start_unread``)."""
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    if db.is_postgres:
        with db.runner_engine.connect() as conn, conn.begin():
            rows: Sequence[tuple[Any, ...]] = execute_and_commit(
                conn,
                sql.CLAIM,
                {"runner_id": runner_id, "expires": expires, "now": now, "limit": limit},
                durable=False,  # a lost lease lapses or is taken again
            )
        if reads is not None:
            reads.update((str(row[0]), unread_of(str(row[0]), row[2:])) for row in rows)
    else:
        with db.runner_session() as session:
            rows = session.execute(_claim_statement(now, runner_id, expires, limit)).all()
    return [str(row[0]) for row in sorted(rows, key=lambda row: row[1] or now)]


def _claim_statement(now: datetime, runner_id: str, expires: datetime, limit: int) -> Update:
    candidates = (
        select(Workflow.id)
        .where(
            Workflow.status == "running",
            Workflow.runnable_at <= now,
            or_(Workflow.lease_owner.is_(None), Workflow.lease_expires_at < now),
        )
        .order_by(Workflow.runnable_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (
        update(Workflow)
        .where(Workflow.id.in_(candidates.scalar_subquery()))
        .values(lease_owner=runner_id, lease_expires_at=expires)
        .returning(Workflow.id, Workflow.runnable_at)
        .execution_options(synchronize_session=False)
    )


class ClaimQueue:
    """The workflows a runner has leased and not started yet (shared by its threads)."""

    def __init__(self, batch: int) -> None:
        self.batch = max(1, batch)
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        # The last claim leased fewer than ``batch``: nothing else was claimable then.
        self.last_claim_short = False
        # What the claims read of the workflows taken and not started yet (PostgreSQL).
        self._reads: dict[str, Unread] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._queue)

    def take(self, db: Database, runner_id: str, lease_seconds: float) -> str | None:
        """The next workflow to run: from the queue, else from a new batch claim."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        reads: dict[str, Unread] = {}
        claimed = claim_workflows(db, runner_id, lease_seconds, self.batch, reads)
        self.last_claim_short = len(claimed) < self.batch
        if not claimed:
            return None
        with self._lock:
            self._queue.extend(claimed[1:])
            # Only what may still be started: the others' reads would only age.
            self._reads = {key: read for key, read in self._reads.items() if key in self._queue}
            self._reads.update(reads)
        return claimed[0]

    def read_of(self, workflow_id: str) -> Unread | None:
        """What the claim read of ``workflow_id`` (once: the start checks it under the
        lock, and reads again when the row changed since); None if nothing."""
        with self._lock:
            return self._reads.pop(workflow_id, None)

    def hand_back(self, db: Database, runner_id: str) -> int:
        """Let go of the leases of what was not started; how many."""
        with self._lock:
            held, self._queue = list(self._queue), deque()
            self._reads = {}
        if held:
            with db.runner_session() as session:
                session.execute(
                    update(Workflow)
                    .where(Workflow.id.in_(held), Workflow.lease_owner == runner_id)
                    .values(lease_owner=None, lease_expires_at=None)
                    .execution_options(synchronize_session=False)
                )
                db.notify_runnable(session, held[0])  # idle runners may take them at once
        return len(held)
