"""What a step is told of a person's decision (outcome, data, votes and the
released call checked against the audit trail), and what a person is shown of
a step before deciding (its proposed action).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.approvals.engine import is_approving
from core.base.errors import CallNotReleased
from core.definitions.calls import verify_call
from core.definitions.workflow import Step
from core.engine.tools import render_args
from core.store.tables import ApprovalRequest, ApprovalResponse, StepRun, Workflow, WorkflowEvent

__all__ = ["asked_by_task", "decision_of", "last_comment", "proposed_action_of", "released_at_once"]


def decision_of(session: Session, approval: ApprovalRequest) -> dict[str, Any]:
    """What a step (and its agent) is told of a decision: outcome, data, every vote,
    and the released call, checked against the audit trail.

    ``call`` is present when the request guarded a call: the call the decision
    released, or None when it released none (a refusal). ``call_refused``
    says why a released call may not run: its row no longer matches the
    digest recorded, append-only, when the decision was made.
    """
    votes = session.scalars(
        select(ApprovalResponse)
        .where(ApprovalResponse.approval_id == approval.id)
        .order_by(ApprovalResponse.id)
    ).all()
    decision: dict[str, Any] = {
        "status": approval.status,
        "decided_by": approval.decided_by,
        "data": approval.decision_data or {},
        "approval_id": approval.id,
        "votes": [
            {
                "approver": v.approver,
                "decision": v.decision,
                "data": v.data,
                "comment": v.comment,
                "channel": v.channel,
                "level": v.level,
                "at": v.created_at.isoformat(),
            }
            for v in votes
        ],
    }
    if approval.proposed_call is None:
        return decision
    released = approval.released_call if is_approving(approval.status) else None
    decision["call"] = (
        None if released is None else {k: released.get(k) for k in ("tool", "arguments", "digest")}
    )
    if released is not None:
        recorded = (
            session.scalars(
                select(WorkflowEvent.data)
                .where(
                    WorkflowEvent.approval_id == approval.id,
                    WorkflowEvent.event_type == "approval.decided",
                )
                .order_by(WorkflowEvent.id.desc())
                .limit(1)
            ).first()
            or {}
        )
        digest = (recorded.get("released_call") or {}).get("digest")
        try:
            verify_call(released)
            if digest != released.get("digest"):
                raise CallNotReleased(
                    f"The stored call to {released.get('tool')!r} is not the call the decision "
                    "released (its digest differs from the audit trail's); it does not run."
                )
        except CallNotReleased as exc:
            decision["call_refused"] = str(exc)
    return decision


def last_comment(session: Session, approval_id: str) -> str:
    comment = session.scalar(
        select(ApprovalResponse.comment)
        .where(ApprovalResponse.approval_id == approval_id)
        .order_by(ApprovalResponse.id.desc())
        .limit(1)
    )
    return comment or ""


def released_at_once(workflow: Workflow, run: StepRun) -> bool:
    """Whether the request just opened for ``run`` was decided at once (a standing rule),
    so the workflow goes on instead of waiting."""
    return workflow.status == "running" and run.status == "waiting_approval"


def asked_by_task(session: Session, run: StepRun) -> bool:
    """True when the run's open approval was asked by its task, not its gate."""
    approval = session.get(ApprovalRequest, run.approval_id) if run.approval_id else None
    return approval is not None and approval.proposed_action.get("origin") == "task"


def proposed_action_of(step: Step, scope: dict[str, Any], show: list[str] | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"step": step.name, "type": step.type}
    if step.task:
        action["task"] = step.task
    if step.tool:
        action["tool"] = step.tool
        try:
            action["args"] = render_args(step.args, scope)
        except KeyError:
            action["args"] = step.args
    if step.context:
        # Filled in (``${steps.x.result}``) so an approver sees what is passed on.
        try:
            action["context"] = render_args(step.context, scope)
        except KeyError:
            action["context"] = step.context
    if show:
        # What the definition asks approvers to see, rendered now (approval_config.show).
        action["show"] = [{"path": path, "value": _value_at(scope, path)} for path in show]
    return action


def _value_at(scope: dict[str, Any], path: str) -> Any:
    try:
        return render_args("${" + path + "}", scope)
    except KeyError:
        return None
