"""Sending due reminders (core.approvals.reminders schedules them), exactly once each.

A runner claims a due ``approval_reminders`` row with ``FOR UPDATE SKIP LOCKED``
(on SQLite ``BEGIN IMMEDIATE`` serialises writers), locks the request in the
engine's one lock order (workflow, then request) and, if the request is still
open in the round the reminder was scheduled for, queues the reminder through
the request's person channels and writes an ``approval.reminder`` event; the
row is marked ``sent`` in that same transaction. A reminder of a round that
ended (decided, escalated, a level passed) is marked ``skipped``.

Only this module locks a reminder row, and the paths that schedule rows only
insert new ones, so its lock order (reminder row, workflow, request) cannot
deadlock with the engine's.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from core.approvals.deciding import notify
from core.approvals.engine import lock_approval
from core.approvals.inbox import time_left
from core.approvals.reminders import REMINDERS_ACTOR, reminder_kind, reminder_round
from core.base.states import APPROVAL_OPEN
from core.definitions.approval import ApprovalConfig
from core.outbox.writer import REMINDER_EVENT
from core.records import rows as store
from core.store.tables import ApprovalReminder, ApprovalRequest, ApprovalResponse, utcnow

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)

# Channels that get a reminder message per approver; webhooks get the event instead.
PERSON_CHANNELS_SKIPPED = frozenset({"webhook"})


def send_due_reminders(
    db: Database, *, runner_id: str = REMINDERS_ACTOR, now: datetime | None = None, limit: int = 100
) -> int:
    """Queue every reminder due by ``now``; returns how many were sent (skipped ones not)."""
    sent = 0
    for _ in range(limit):
        outcome = _send_one(db, runner_id, now or utcnow())
        if outcome is None:
            break
        sent += outcome
    return sent


def _due(now: datetime | ColumnElement[datetime]) -> tuple[ColumnElement[bool], ...]:
    return (ApprovalReminder.status == "due", ApprovalReminder.due_at <= now)


def due_reminders(now: datetime | ColumnElement[datetime]) -> Select[int]:
    """Reminders due by ``now`` (their ids): what ``send_due_reminders`` sends, also
    probed by an idle runner (core.engine.runner.idle_probe)."""
    return select(ApprovalReminder.id).where(*_due(now))


def _send_one(db: Database, runner_id: str, now: datetime) -> bool | None:
    """Claim and send one due reminder: True sent, False skipped, None when none is due."""
    with db.session() as session:
        row = session.scalars(
            select(ApprovalReminder)
            .where(*_due(now))
            .order_by(ApprovalReminder.due_at, ApprovalReminder.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        approval = lock_approval(session, row.approval_id)
        row.sent_at = now
        row.sent_by = runner_id
        current = (
            approval.status == APPROVAL_OPEN
            and approval.level == row.level
            and approval.escalations == row.escalation
            and approval.expires_at is not None
            and approval.expires_at > now
        )
        if not current:
            row.status = "skipped"
            return False
        row.status = "sent"
        config = ApprovalConfig.model_validate(approval.config)
        recipients = _still_to_answer(session, approval)
        left = time_left(approval.expires_at, now)
        reminder: dict[str, Any] = {
            "share": f"{row.share:g}%",
            "deadline": row.deadline.isoformat(),
            "time_left": left,
            "level": row.level,
            "escalation": row.escalation,
            "round": reminder_round(row.level, row.escalation, row.share),
        }
        notify(
            session,
            approval,
            recipients,
            kind=reminder_kind(row.level, row.escalation, row.share),
            config=config,
            reminder=reminder,
            skip=PERSON_CHANNELS_SKIPPED,
        )
        store.append_event(
            session,
            REMINDER_EVENT,
            REMINDERS_ACTOR,
            workflow_id=approval.workflow_id,
            approval_id=approval.id,
            step_name=approval.step_name,
            data={**reminder, "recipients": recipients, "runner": runner_id},
        )
        log.info(
            "approval reminder queued", approval_id=approval.id, share=row.share, recipients=len(recipients)
        )
        return True


def _still_to_answer(session: Session, approval: ApprovalRequest) -> list[str]:
    """The request's approvers now, without those who already answered this level."""
    answered = set(
        session.scalars(
            select(ApprovalResponse.approver).where(
                ApprovalResponse.approval_id == approval.id, ApprovalResponse.level == approval.level
            )
        )
    )
    return [a for a in dict.fromkeys(approval.approvers) if a not in answered]


__all__ = ["due_reminders", "send_due_reminders"]
