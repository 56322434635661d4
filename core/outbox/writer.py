"""Follow-up notifications queued from the audit trail, in the same transaction.

Every state change the channels care about already writes a
``WorkflowEvent`` (``approval.requested``, ``approval.decided``,
``approval.cancelled``, ``workflow.status_changed``, ``workflow.rolled_back``).
A ``before_flush`` hook turns those events into outbox rows in the very
transaction that records them, so a decision from any channel (dashboard,
Slack, email link, REST, CLI) queues the Slack message update and the
outbound webhooks, and a rolled-back transaction queues nothing.

``core/approvals/engine.py`` imports this module, so the hook is registered in
every process that can decide. New outbox rows also fire ``outbox_signal``
at commit, which wakes an in-process dispatcher at once; dispatchers in other
processes poll (``COUNTERSIGN_DISPATCH_POLL_SECONDS``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.outbox.settings import webhook_endpoints
from core.store.tables import ApprovalRequest, Notification, WorkflowEvent
from core.store.wakeup import Signal

DECIDED_KIND = "approval.decided"
# A reminder before a request's deadline (core.approvals.reminders); webhooks get it too.
REMINDER_EVENT = "approval.reminder"
ALERT_KIND = "alert.raised"  # its payload carries the alert (core.ops.alerts.alert_payload)
WEBHOOK_PREFIX = "webhook."
FINISHED_STATUSES = ("completed", "failed", "cancelled")

outbox_signal = Signal()
_NEW_ROWS = "countersign_outbox_new"


def webhook_event_of(event_row: WorkflowEvent) -> str | None:
    """The outbound webhook event type an audit event maps to, if any."""
    kind = event_row.event_type
    if kind in ("approval.requested", "approval.decided", "workflow.rolled_back", REMINDER_EVENT):
        return kind
    if kind == "workflow.status_changed" and (event_row.after or {}).get("status") in FINISHED_STATUSES:
        return "workflow.finished"
    return None


def _event_body(session: Session | None, event_row: WorkflowEvent, event_type: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "workflow_id": event_row.workflow_id,
        "approval_id": event_row.approval_id,
        "actor": event_row.actor,
        "step_name": event_row.step_name,
    }
    if event_row.approval_id and session is not None:
        approval = session.get(ApprovalRequest, event_row.approval_id)
        if approval is not None:
            data.update(
                title=approval.title,
                approval_type=approval.approval_type,
                status=approval.status,
                approvers=list(approval.approvers),
                decided_by=approval.decided_by,
                decision_data=approval.decision_data,
            )
    if event_type == "workflow.finished":
        data["status"] = (event_row.after or {}).get("status")
    if event_type == REMINDER_EVENT:  # which reminder: share, deadline, time left
        data["reminder"] = {k: v for k, v in (event_row.data or {}).items() if k != "runner"}
    if event_type == "workflow.rolled_back":
        data["checkpoint"] = (event_row.data or {}).get("checkpoint")
        data["reason"] = (event_row.data or {}).get("reason")
    return {"type": event_type, "timestamp": event_row.created_at.isoformat(), "data": data}


def _slack_recipients(session: Session, approval_id: str) -> list[str]:
    rows = session.execute(
        select(Notification.recipient, Notification.kind).where(
            Notification.approval_id == approval_id, Notification.channel == "slack"
        )
    ).all()
    pending = [
        (n.recipient, n.kind)
        for n in session.new
        if isinstance(n, Notification) and n.approval_id == approval_id and n.channel == "slack"
    ]
    done = {r for r, k in [*rows, *pending] if k == DECIDED_KIND}
    return [r for r in dict.fromkeys(r for r, k in [*rows, *pending] if k != DECIDED_KIND) if r not in done]


def _queue_followups(session: Session, _flush_context: Any, _instances: Any) -> None:
    # Pending objects pass through before_flush exactly once (they are flushed
    # right after), so each event is handled once without bookkeeping.
    events = [obj for obj in session.new if isinstance(obj, WorkflowEvent)]
    if any(isinstance(obj, Notification) for obj in session.new):
        session.info[_NEW_ROWS] = True
    if not events:
        return
    with session.no_autoflush:
        for event_row in events:
            if event_row.event_type in ("approval.decided", "approval.cancelled") and event_row.approval_id:
                approval = session.get(ApprovalRequest, event_row.approval_id)
                for recipient in _slack_recipients(session, event_row.approval_id):
                    session.add(
                        Notification(
                            approval_id=event_row.approval_id,
                            workflow_id=event_row.workflow_id,
                            kind=DECIDED_KIND,
                            channel="slack",
                            recipient=recipient,
                            payload={
                                "outcome": (event_row.after or {}).get("status"),
                                "decided_by": approval.decided_by if approval else event_row.actor,
                            },
                        )
                    )
                    session.info[_NEW_ROWS] = True
            event_type = webhook_event_of(event_row)
            if event_type is None:
                continue
            approval_config = None
            if event_row.approval_id:
                approval = session.get(ApprovalRequest, event_row.approval_id)
                approval_config = approval.config if approval else None
            urls = webhook_endpoints(session, approval_config)
            if not urls:
                continue
            for values in webhook_rows(session, event_row, event_type, urls):
                session.add(Notification(**values))
                session.info[_NEW_ROWS] = True


def webhook_rows(
    session: Session | None, event_row: WorkflowEvent, event_type: str, urls: list[str]
) -> list[dict[str, Any]]:
    """The outbox rows (as ``Notification`` values) of one webhook event, one per endpoint.

    ``session`` reads the event's request for its body (None: the event has none,
    as the runner's finish path knows)."""
    body = _event_body(session, event_row, event_type)
    kind = WEBHOOK_PREFIX + event_type
    if event_type == REMINDER_EVENT:  # one row per reminder, not one per request
        kind += "." + str((event_row.data or {}).get("round"))
    return [
        {
            "approval_id": event_row.approval_id,
            "workflow_id": event_row.workflow_id,
            "kind": kind,
            "channel": "webhook",
            "recipient": url,
            "payload": {"event": body},
        }
        for url in urls
    ]


def wake_dispatcher() -> None:
    """New outbox rows were committed outside a session (the runner's finish path)."""
    outbox_signal.fire()


def _after_commit(session: Session) -> None:
    if session.info.pop(_NEW_ROWS, None):
        outbox_signal.fire()


def _after_rollback(session: Session) -> None:
    session.info.pop(_NEW_ROWS, None)


def register_session_hooks() -> None:
    """Queue follow-up rows (Slack updates, webhooks) from events at flush, and wake the
    dispatcher at commit. Installed once per process by ``core.runtime``."""
    if not event.contains(Session, "before_flush", _queue_followups):
        event.listen(Session, "before_flush", _queue_followups)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))
