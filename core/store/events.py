"""The one insert of an audit event (``workflow_events``).

``core.records.rows.append_event`` is what use cases call: it checks the
actor's permission for events that stand for an action, then calls this.
Identity's own audit events (accounts, tokens, sign-ins, refusals) stand for
no workflow action and are written here directly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.store.tables import WorkflowEvent, utcnow


def add_event(
    session: Session,
    event_type: str,
    actor: str,
    *,
    workflow_id: str | None = None,
    approval_id: str | None = None,
    step_name: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> WorkflowEvent:
    """Add one event to the caller's transaction (it commits with the change it records)."""
    event = WorkflowEvent(
        workflow_id=workflow_id,
        approval_id=approval_id,
        event_type=event_type,
        actor=actor,
        step_name=step_name,
        before=before,
        after=after,
        data=data or {},
        created_at=utcnow(),
    )
    session.add(event)
    return event
