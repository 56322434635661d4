"""Reminders before a request's deadline: ``approval_config.remind: [50%, 90%]``.

When a request gets a deadline (it opens, a level passes, it escalates), one
``approval_reminders`` row per share is scheduled in the same transaction:
due at that share of the time between then and the deadline. This module
schedules them and names their outbox rows; ``core.approvals.reminder_sender``
sends each exactly once (it takes the engine's locks, and the engine imports
this module, so the two are apart).

Through the request's channels: email sends one message per reminder; Slack
updates the message it sent earlier in place (``chat.update``, never a new
message); webhooks get an ``approval.reminder`` event (core.outbox.writer).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.base.states import APPROVAL_OPEN
from core.definitions.approval import ApprovalConfig
from core.outbox.writer import REMINDER_EVENT
from core.store.tables import ApprovalReminder, ApprovalRequest

if TYPE_CHECKING:
    from core.store.db import Database

REMINDER_KIND_PREFIX = "approval.reminder."
REMINDERS_ACTOR = "system:reminders"


def reminder_round(level: int, escalation: int, share: float) -> str:
    """Which reminder of a request: ``"<level>.<escalation>.<share>"``."""
    return f"{level}.{escalation}.{share:g}"


def reminder_kind(level: int, escalation: int, share: float) -> str:
    """The outbox kind of one reminder (unique per request, channel and recipient)."""
    return REMINDER_KIND_PREFIX + reminder_round(level, escalation, share)


def is_reminder_kind(kind: str) -> bool:
    return kind.startswith(REMINDER_KIND_PREFIX)


def schedule_reminders(
    session: Session, approval: ApprovalRequest, config: ApprovalConfig, start: datetime
) -> None:
    """Schedule the request's reminders for the deadline it got at ``start``."""
    if not config.remind or approval.expires_at is None or approval.status != APPROVAL_OPEN:
        return
    span = approval.expires_at - start
    for share in config.remind:
        session.add(
            ApprovalReminder(
                approval_id=approval.id,
                level=approval.level,
                escalation=approval.escalations,
                share=share,
                deadline=approval.expires_at,
                due_at=start + span * (share / 100),
                status="due",
                created_at=start,
            )
        )


def next_reminder(db: Database) -> datetime | None:
    """When the soonest unsent reminder is due (the runner sleeps until then at most)."""
    with db.read() as session:
        return session.scalar(
            select(func.min(ApprovalReminder.due_at)).where(ApprovalReminder.status == "due")
        )


__all__ = [
    "REMINDER_EVENT",
    "REMINDER_KIND_PREFIX",
    "REMINDERS_ACTOR",
    "is_reminder_kind",
    "next_reminder",
    "reminder_kind",
    "reminder_round",
    "schedule_reminders",
]
