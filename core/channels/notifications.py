"""Outbox rows as the dashboard and the dispatcher see them: facts, recipients, retry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.approvals.presentation import needs_fields
from core.base.errors import InvalidTransition, NotificationNotFound
from core.channels.base import ApprovalFacts
from core.identity.groups import members_of
from core.outbox.writer import _NEW_ROWS
from core.records import rows as store
from core.store.tables import ApprovalRequest, ApprovalResponse, Notification, Workflow, utcnow

if TYPE_CHECKING:
    from core.approvals.presentation import RequestView
    from core.store.db import Database

log = structlog.get_logger(__name__)


def approval_facts(session: Session, approval_id: str) -> ApprovalFacts | None:
    approval = session.get(ApprovalRequest, approval_id)
    if approval is None:
        return None
    responses = session.scalars(
        select(ApprovalResponse)
        .where(ApprovalResponse.approval_id == approval_id)
        .order_by(ApprovalResponse.id)
    ).all()
    workflow_name = None
    if approval.workflow_id:
        workflow_name = session.scalar(select(Workflow.name).where(Workflow.id == approval.workflow_id))
    return ApprovalFacts(
        id=approval.id,
        title=approval.title,
        description=approval.description or "",
        approval_type=approval.approval_type,
        status=approval.status,
        approvers=list(approval.approvers or []),
        requested_by=approval.requested_by,
        workflow_id=approval.workflow_id,
        workflow_name=workflow_name,
        step_name=approval.step_name,
        level=approval.level,
        expires_at=approval.expires_at,
        decided_by=approval.decided_by,
        decided_at=approval.decided_at,
        proposed_action=dict(approval.proposed_action or {}),
        context_data=dict(approval.context_data or {}),
        view=_view(approval, responses),
        needs_fields=needs_fields(approval.approval_type, approval.response_schema),
    )


def _view(approval: ApprovalRequest, responses: Sequence[ApprovalResponse]) -> RequestView | None:
    """The request as every channel shows it; a message without it still goes out."""
    from core.approvals.presentation import request_view  # imports the engine, which imports the outbox

    try:
        return request_view(approval, responses)
    except Exception as exc:  # noqa: BLE001 - a message without the call table beats none
        log.warning("notifications.view_failed", approval_id=approval.id, error=str(exc))
        return None


def addresses_of(session: Session, recipient: str, *, tenant: str | None = None) -> list[str]:
    """Email addresses behind a recipient: itself, or a group's members.

    ``tenant`` is the request's: a group's members who cannot see it (users
    of other tenants, see core.store.tenancy) are left out.
    """
    return members_of(session, recipient, tenant=tenant)


def retry_notification(db: Database, notification_id: str, actor: str) -> Notification:
    """Queue a dead notification again (the dashboard's retry button)."""
    with db.session() as session:
        row = session.get(Notification, notification_id, with_for_update=True)
        if row is None:
            raise NotificationNotFound(f"No notification has the id {notification_id!r}.")
        if row.status != "dead":
            raise InvalidTransition(f"Only dead notifications can be retried; this one is {row.status}.")
        before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}
        row.status = "pending"
        row.attempts = 0
        row.next_attempt_at = utcnow()
        row.updated_at = utcnow()
        store.append_event(
            session,
            "notification.retried",
            actor,
            workflow_id=row.workflow_id,
            approval_id=row.approval_id,
            before=before,
            after={"status": "pending"},
            data={"notification_id": row.id, "channel": row.channel, "recipient": row.recipient},
        )
        session.info[_NEW_ROWS] = True
    return row


def notifications_for(db: Database, approval_id: str) -> list[Notification]:
    """An approval's outbox rows (for the dashboard's delivery list)."""
    with db.read() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.approval_id == approval_id)
                .order_by(Notification.created_at, Notification.channel, Notification.recipient)
            ).all()
        )


__all__ = ["approval_facts", "addresses_of", "retry_notification", "notifications_for"]
