"""A rollback's hold on its workflow, from its first transaction to its last.

The rollback owns the workflow's lease (``rollback:<id>``), renewed every third
of its length while compensations run (``LeaseHeartbeat``): runners never claim
it, and resume, retry, cancel and another rollback are refused meanwhile
(``refuse_during_rollback``). Each step of the rollback checks it still holds
it (``check_owner``); a failed rollback lets go at once (``let_go``), a dead
one's lease lapses. ``core.engine.checkpoints`` runs the rollback.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.base.errors import WorkflowBusy
from core.store.tables import Workflow, WorkflowEvent, utcnow

if TYPE_CHECKING:
    from core.store.db import Database

# The lease owner of a workflow a rollback holds (``rollback:<id>``): runners never
# claim it and resume, retry, cancel and another rollback are refused meanwhile.
ROLLBACK_LEASE = "rollback:"

log = structlog.get_logger(__name__)

__all__ = [
    "ROLLBACK_LEASE",
    "LeaseHeartbeat",
    "RollbackLost",
    "check_owner",
    "lease_live",
    "let_go",
    "refuse_during_rollback",
    "rollback_in_progress",
]


def lease_live(workflow: Workflow) -> bool:
    return (
        workflow.lease_owner is not None
        and workflow.lease_expires_at is not None
        and workflow.lease_expires_at > utcnow()
    )


def rollback_in_progress(workflow: Workflow) -> bool:
    """Whether a rollback holds the workflow now (its lease is live)."""
    return bool(workflow.lease_owner and workflow.lease_owner.startswith(ROLLBACK_LEASE)) and lease_live(
        workflow
    )


def refuse_during_rollback(session: Session, workflow: Workflow, doing: str) -> None:
    """Raise ``WorkflowBusy`` naming the rollback in progress, if one holds the workflow.

    For every change of a workflow a rollback would contradict (resume, retry,
    cancel, another rollback); called with the workflow row locked.
    """
    if not rollback_in_progress(workflow):
        return
    started = session.scalars(
        select(WorkflowEvent)
        .where(WorkflowEvent.workflow_id == workflow.id, WorkflowEvent.event_type == "rollback.started")
        .order_by(WorkflowEvent.id.desc())
        .limit(1)
    ).first()
    what = "a rollback"
    if started is not None:
        what = (
            f"a rollback to {started.data.get('checkpoint')!r} by {started.actor} "
            f"(started {started.created_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
    raise WorkflowBusy(
        f"Workflow {workflow.id} cannot be {doing}: {what} is still in progress. "
        "Try again when it has finished."
    )


class RollbackLost(WorkflowBusy):
    """The rollback's lease on the workflow lapsed and something else changed it."""


def check_owner(workflow: Workflow, token: str) -> None:
    if workflow.lease_owner != token or workflow.status != "paused":
        raise RollbackLost(
            f"The rollback of workflow {workflow.id} lost its hold on it (its lease lapsed and "
            f"the workflow is now {workflow.status}); compensations recorded so far stay "
            "compensated, run the rollback again to continue."
        )


def let_go(db: Database, workflow_id: str, token: str) -> None:
    """Release the rollback's lease after a failure, if it still holds it (else it lapses)."""
    try:
        with db.session() as session:
            session.execute(
                update(Workflow)
                .where(Workflow.id == workflow_id, Workflow.lease_owner == token)
                .values(lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )
    except Exception as exc:  # noqa: BLE001  (the database is gone: the lease lapses on its own)
        log.warning("rollback: could not release the lease", workflow_id=workflow_id, error=str(exc))


class LeaseHeartbeat:
    """Renews the rollback's lease every third of its length while compensations run."""

    def __init__(self, db: Database, workflow_id: str, token: str, lease_seconds: float) -> None:
        self.db, self.workflow_id, self.token, self.lease_seconds = db, workflow_id, token, lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rollback-lease-{workflow_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                with self.db.session() as session:
                    session.execute(
                        update(Workflow)
                        .where(Workflow.id == self.workflow_id, Workflow.lease_owner == self.token)
                        .values(lease_expires_at=utcnow() + timedelta(seconds=self.lease_seconds))
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:  # noqa: BLE001  (retried at the next beat; a lost lease is caught by _check_owner)
                log.warning(
                    "rollback: could not renew the lease", workflow_id=self.workflow_id, error=str(exc)
                )
