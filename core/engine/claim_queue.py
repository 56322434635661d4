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
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update

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


def claim_workflows(db: Database, runner_id: str, lease_seconds: float, limit: int) -> list[str]:
    """Take the leases of up to ``limit`` runnable workflows; their ids, oldest first."""
    now = utcnow()
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
    with db.runner_session() as session:
        rows = session.execute(
            update(Workflow)
            .where(Workflow.id.in_(candidates.scalar_subquery()))
            .values(lease_owner=runner_id, lease_expires_at=now + timedelta(seconds=lease_seconds))
            .returning(Workflow.id, Workflow.runnable_at)
            .execution_options(synchronize_session=False)
        ).all()
        if rows:  # the setting in force at COMMIT counts; a claim of nothing writes nothing
            db.commit_without_flush(session)  # a lost lease lapses or is taken again
    return [str(row[0]) for row in sorted(rows, key=lambda row: row[1] or now)]


class ClaimQueue:
    """The workflows a runner has leased and not started yet (shared by its threads)."""

    def __init__(self, batch: int) -> None:
        self.batch = max(1, batch)
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()

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
        claimed = claim_workflows(db, runner_id, lease_seconds, self.batch)
        if not claimed:
            return None
        with self._lock:
            self._queue.extend(claimed[1:])
        return claimed[0]

    def hand_back(self, db: Database, runner_id: str) -> int:
        """Let go of the leases of what was not started; how many."""
        with self._lock:
            held, self._queue = list(self._queue), deque()
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
