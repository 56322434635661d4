"""Row access shared by the engine modules: lookups, status changes, events.

Everything here runs inside a caller's transaction (a ``Session`` from
``Database.session()``) so that a state change and its audit event commit
together or not at all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, null, select
from sqlalchemy.orm import Session

from core.base.errors import ApprovalNotFound, WorkflowNotFound, quoted
from core.base.states import check_workflow_transition
from core.identity import permissions
from core.records import trail
from core.store.events import add_event
from core.store.tables import ApprovalRequest, Workflow, WorkflowEvent, utcnow
from core.store.tenancy import tenant_scope


def append_event(
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
    """Append an audit event; an event that stands for an action (answering,
    configuring a channel, retrying a delivery) first checks the actor may do it."""
    # An audited change names its action: the actor must be allowed it
    # (core.identity.permissions; e.g. answering needs approvals:answer).
    permissions.check_event(session, event_type, actor, workflow_id=workflow_id, approval_id=approval_id)
    return add_event(
        session,
        event_type,
        actor,
        workflow_id=workflow_id,
        approval_id=approval_id,
        step_name=step_name,
        before=before,
        after=after,
        data=data,
    )


def get_workflow(
    session: Session, workflow_id: str, *, for_update: bool = False, tenant: str | None = None
) -> Workflow:
    """The workflow; with ``tenant`` (a tenant user's), another tenant's is unknown."""
    query = tenant_scope(tenant).apply(
        select(Workflow).where(Workflow.id == str(workflow_id)), Workflow.tenant
    )
    if for_update:
        query = query.with_for_update()
    workflow = session.scalars(query).one_or_none()
    if workflow is None:
        raise WorkflowNotFound(f"No workflow has the id {quoted(workflow_id)}.")
    if for_update:
        trail.chain_held(session, workflow.id)
    return workflow


def get_approval(
    session: Session, approval_id: str, *, for_update: bool = False, tenant: str | None = None
) -> ApprovalRequest:
    """The request; with ``tenant`` (a tenant user's), another tenant's is unknown."""
    query = tenant_scope(tenant).apply(
        select(ApprovalRequest).where(ApprovalRequest.id == str(approval_id)), ApprovalRequest.tenant
    )
    if for_update:
        query = query.with_for_update()
    approval = session.scalars(query).one_or_none()
    if approval is None:
        raise ApprovalNotFound(f"No approval request has the id {quoted(approval_id)}.")
    return approval


def transition_workflow(
    session: Session,
    workflow: Workflow,
    new_status: str,
    actor: str,
    *,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Move a workflow along its state machine and record the event."""
    old_status = workflow.status
    check_workflow_transition(old_status, new_status)
    now = utcnow()
    workflow.status = new_status
    workflow.updated_at = now
    if new_status == "running" and workflow.started_at is None:
        workflow.started_at = now
    if new_status in ("completed", "failed", "cancelled"):
        workflow.finished_at = now
    elif old_status in ("completed", "failed"):
        workflow.finished_at = None
    if new_status != "running":
        workflow.runnable_at = None
    event_data = dict(data or {})
    if reason:
        event_data["reason"] = reason
    append_event(
        session,
        "workflow.status_changed",
        actor,
        workflow_id=workflow.id,
        before={"status": old_status},
        after={"status": new_status},
        data=event_data,
    )


def schedule(session: Session, workflow: Workflow, *, delay: float = 0.0) -> None:
    """Make a running workflow claimable now (or after ``delay`` seconds).

    Wakes runners at commit; this is the only place that notifies, so NOTIFY
    happens only when a workflow becomes runnable.
    """
    from core.store.db import database_of

    workflow.runnable_at = utcnow() + timedelta(seconds=delay)
    workflow.lease_owner = None
    workflow.lease_expires_at = None
    database_of(session).notify_runnable(session, workflow.id)


def snapshot(workflow: Workflow) -> dict[str, Any]:
    """The parts of a workflow's state that events record as before/after."""
    return {
        "status": workflow.status,
        "current_step": workflow.current_step,
        "context": workflow.context,
        "step_outputs": workflow.step_outputs,
    }


# The runner's own step events: no person's permission is involved in them,
# so the hot path may append them in one INSERT (``insert_runner_events``).
RUNNER_EVENTS = frozenset({"step.completed", "step.started"})


def event_values(
    event_type: str,
    actor: str,
    *,
    workflow_id: str,
    step_name: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """One ``workflow_events`` row, as ``insert_runner_events`` takes it."""
    return {
        "workflow_id": workflow_id,
        "approval_id": None,
        "session_id": None,
        "event_type": event_type,
        "actor": actor,
        "step_name": step_name,
        # SQL NULL, as append_event leaves them (not JSON null).
        "before": null() if before is None else before,
        "after": null() if after is None else after,
        "data": data or {},
        "created_at": created_at or utcnow(),
    }


def insert_runner_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Append the runner's step events in one multi-row INSERT (SQLAlchemy Core)."""
    if not rows:
        return
    refused = {row["event_type"] for row in rows} - RUNNER_EVENTS
    if refused:
        raise ValueError(f"not a runner step event: {sorted(refused)} (use append_event)")
    # Sealed here; the ORM's entries are sealed by core.records.trail's flush hook. The
    # runner writes these under its workflow's row lock, so the chain needs no other.
    trail.seal_rows(session, rows, locked=True)
    session.execute(insert(WorkflowEvent).values(rows))
