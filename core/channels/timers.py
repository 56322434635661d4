"""How reminders, escalations and veto windows read in messages, and which outbox
rows update an earlier message instead of sending a new one.

A decision and a reminder both change the Slack message a person already has
(``chat.update`` on the messages sent to that recipient for that request);
every other approval row is an original message. Email has no update: each
reminder is its own message, worded as one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_

from core.approvals.reminders import REMINDER_KIND_PREFIX, is_reminder_kind
from core.outbox.writer import DECIDED_KIND
from core.store.tables import Notification

if TYPE_CHECKING:
    from core.channels.base import ApprovalFacts

ESCALATED_PREFIX = "approval.escalated"


def updates_a_message(kind: str) -> bool:
    """Whether a row of this kind updates the messages sent earlier (Slack)."""
    return kind == DECIDED_KIND or is_reminder_kind(kind)


def is_original() -> ColumnElement[bool]:
    """SQL: the row is an original message (not a decision's or a reminder's update)."""
    return and_(Notification.kind != DECIDED_KIND, Notification.kind.not_like(REMINDER_KIND_PREFIX + "%"))


def reminder_notice(payload: dict[str, Any]) -> str:
    """ "Reminder: 2h 10m left to answer" from a reminder row's payload."""
    reminder = payload.get("reminder") or {}
    left = str(reminder.get("time_left") or "").strip()
    return (
        f"Reminder: {left} to answer" if left.endswith("left") else "Reminder: still waiting for your answer"
    )


def email_wording(kind: str, approval: ApprovalFacts, payload: dict[str, Any]) -> tuple[str, str]:
    """(subject prefix, introduction) of an approval email of this kind."""
    notice = approval.view.notice if approval.view is not None else None
    if is_reminder_kind(kind):
        return "Reminder: ", f"{reminder_notice(payload)}: an approval is still waiting for you"
    if kind.startswith(ESCALATED_PREFIX):
        return "Escalated: ", "Escalated to you: an approval is waiting for your answer"
    if notice:
        return "Runs unless vetoed: ", f"An AI agent's call {notice[0].lower()}{notice[1:]}"
    return "Approval needed: ", "An AI agent is waiting for your approval"


__all__ = ["email_wording", "is_original", "reminder_notice", "updates_a_message"]
