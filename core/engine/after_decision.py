"""What a decision means for its workflow, said the same way on every page.

``next_after`` says where the workflow goes once a request is answered, as the
engine will take it (``core.engine.person_wait``): an approval of an approval
step moves on to the next step, an approval of a gated step runs that step, a
rejection follows the step's ``on_reject`` (stop, skip, or go to a step), a
request a task asked hands its answer back to the task's agent, and a request
still open waits for the people it names (level by level). ``what_next`` reads
one request for it.

``rejections`` tells a workflow a person stopped apart from one that failed:
its status stays ``failed`` (the engine's), but the step it stopped at waited
for a request that was rejected, so pages and alerts say who said no and why
instead of showing an error. Read from the rows, never from the error text.

Step names and comments may be anyone's words: renderers treat them as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.approvals.deciding import levels_for
from core.base.errors import quoted
from core.base.states import APPROVAL_OPEN, APPROVING_OUTCOMES
from core.definitions.approval import ApprovalConfig
from core.definitions.workflow import Step, WorkflowDefinition
from core.records import rows as store
from core.store.tables import ApprovalRequest, ApprovalResponse, Workflow
from core.store.tenancy import tenant_of

if TYPE_CHECKING:
    from core.store.db import Database

__all__ = ["Next", "Rejection", "next_after", "rejection_of", "rejections", "what_next"]

REJECTED = "rejected"
# How a request ended, in words: "the request was rejected".
_ENDED = {
    "approved": "was approved",
    "modified": "was approved with changes",
    "rejected": "was rejected",
    "expired": "expired unanswered",
    "cancelled": "was cancelled",
}
# What a workflow that has moved on since is now, in words.
_SINCE = {
    "completed": "it has since completed",
    "failed": "it has since failed",
    "cancelled": "it has since been cancelled",
}


@dataclass(frozen=True)
class Next:
    """Where a request's workflow goes after its decision (or while it is open)."""

    workflow_id: str
    sentence: str  # "The workflow resumes at step 'deploy'."
    # The workflow stops here because of the decision (a rejection, an expiry): the
    # person's decision, shown as a warning, not a failure.
    stopped: bool = False


@dataclass(frozen=True)
class Rejection:
    """The rejected request a failed workflow stopped at."""

    workflow_id: str
    approval_id: str
    step: str
    decided_by: str | None
    comment: str

    @property
    def sentence(self) -> str:
        """ "Stopped: the request at step 'ask' was rejected by finance@example.com: over budget"."""
        by = f" by {self.decided_by}" if self.decided_by else ""
        why = f": {self.comment}" if self.comment else "."
        return f"Stopped: the request at step {quoted(self.step)} was rejected{by}{why}"


def _waiting(approval: ApprovalRequest, responses: Sequence[ApprovalResponse]) -> str:
    """Who the open request waits for now: "level 2 of 3: director@example.com"."""
    here = [v for v in responses if v.level == approval.level]
    answered = {v.approver for v in here}
    left = [a for a in approval.approvers if a not in answered] or list(approval.approvers)
    approvals = sum(v.decision in ("approve", "modify") for v in here)
    needed = max(1, approval.threshold - approvals)
    try:
        config = ApprovalConfig.model_validate(approval.config)
        amount = (approval.decision_data or {}).get("approved_amount", approval.context_data.get("amount"))
        levels = len(levels_for(config, float(amount) if isinstance(amount, int | float) else None))
    except ValueError:  # a config stored in an older format: say only the people
        levels = 1
    levels = max(levels, approval.level + 1)
    where = f"level {approval.level + 1} of {levels}: " if levels > 1 else ""
    if here:
        more = f" ({needed} more approval{'s' if needed > 1 else ''} needed)"
    else:
        more = f" ({needed} approvals needed)" if needed > 1 else ""
    return f"The workflow waits for {where}{', '.join(left)}{more}."


def _after(steps: Sequence[Step], index: int) -> str:
    """Going on after the step at ``index``: "resumes at step 'deploy'", or "finishes"."""
    if index + 1 < len(steps):
        return f"resumes at step {quoted(steps[index + 1].name)}"
    return f"finishes (step {quoted(steps[index].name)} is its last)"


def next_after(
    approval: ApprovalRequest,
    workflow: Workflow,
    responses: Sequence[ApprovalResponse] = (),
    waiting_now: Sequence[ApprovalRequest] = (),
) -> Next | None:
    """Where ``workflow`` goes after ``approval`` as it stands (None: the definition does
    not name the request's step, so there is nothing to say but the workflow's status);
    once it has moved on, how it is now (``waiting_now``: its other open requests)."""
    if approval.status == APPROVAL_OPEN:
        return Next(workflow.id, _waiting(approval, responses))
    try:
        steps = WorkflowDefinition.model_validate(workflow.definition).steps
    except ValueError:
        return None
    index = next((i for i, s in enumerate(steps) if s.name == approval.step_name), None)
    if index is None:
        return None
    step = steps[index]
    name = step.name
    approving = approval.status in APPROVING_OUTCOMES
    ended = "the request " + _ENDED.get(approval.status, f"is {approval.status}")
    stopped = False
    if approval.proposed_action.get("origin") == "task":
        sentence = f"The workflow resumes at step {quoted(name)}: its agent is told {ended}."
    elif approving:
        if step.type == "approval":
            sentence = f"The workflow {_after(steps, index)}."
        elif step.type == "tool" and step.tool:
            sentence = f"The workflow resumes at step {quoted(name)}, which runs {step.tool} as approved."
        else:
            sentence = f"The workflow resumes at step {quoted(name)}."
    elif approval.status == "cancelled":
        sentence = "The request was cancelled: the workflow no longer waits for it."
    elif step.on_reject.action == "skip":
        sentence = f"The workflow skips step {quoted(name)} ({ended}) and {_after(steps, index)}."
    elif step.on_reject.action == "goto" and step.on_reject.target:
        sentence = f"The workflow goes to step {quoted(step.on_reject.target)} ({ended})."
    else:
        sentence = f"The workflow has stopped at step {quoted(name)}: {ended}."
        stopped = True
    moved_on = workflow.current_step_run_id != approval.step_run_id
    if workflow.status in _SINCE and (moved_on or not stopped):
        sentence = f"{sentence[:-1]} ({_SINCE[workflow.status]})."
    elif moved_on and waiting_now:
        asked = "; ".join(f"{', '.join(w.approvers)} to answer {quoted(w.title)}" for w in waiting_now)
        sentence = f"{sentence[:-1]} (it now waits for {asked})."
    elif workflow.status == "paused":
        sentence = f"{sentence} It is paused: this happens once it is resumed."
    return Next(workflow.id, sentence, stopped)


def what_next(db: Database, approval_id: str, *, viewer: str) -> Next | None:
    """``next_after`` for one request as ``viewer`` sees it (None: no workflow); another
    tenant's request is unknown to them."""
    with db.read() as session:
        tenant = tenant_of(session, viewer)
        approval = store.get_approval(session, approval_id, tenant=tenant)
        if approval.workflow_id is None:
            return None
        workflow = store.get_workflow(session, approval.workflow_id, tenant=tenant)
        responses = session.scalars(
            select(ApprovalResponse)
            .where(ApprovalResponse.approval_id == approval.id)
            .order_by(ApprovalResponse.id)
        ).all()
        others = session.scalars(
            select(ApprovalRequest)
            .where(
                ApprovalRequest.workflow_id == workflow.id,
                ApprovalRequest.status == APPROVAL_OPEN,
                ApprovalRequest.id != approval.id,
            )
            .order_by(ApprovalRequest.created_at)
        ).all()
        return next_after(approval, workflow, responses, others)


def rejections(session: Session, workflow_ids: Sequence[str]) -> dict[str, Rejection]:
    """Of these workflows, those ``failed`` because a person rejected the request their
    current step waited for (``on_reject: fail``), by workflow id, with who and why."""
    ids = list(dict.fromkeys(i for i in workflow_ids if i))
    if not ids:
        return {}
    rows = session.execute(
        select(ApprovalRequest)
        .join(
            Workflow,
            (Workflow.id == ApprovalRequest.workflow_id)
            & (Workflow.current_step_run_id == ApprovalRequest.step_run_id),
        )
        .where(
            Workflow.id.in_(ids),
            Workflow.status == "failed",
            ApprovalRequest.status == REJECTED,
        )
    ).scalars()
    found: dict[str, Rejection] = {}
    for approval in rows:
        if approval.proposed_action.get("origin") == "task":  # its agent was told and went on
            continue
        comment = session.scalars(
            select(ApprovalResponse.comment)
            .where(ApprovalResponse.approval_id == approval.id, ApprovalResponse.decision == "reject")
            .order_by(ApprovalResponse.id.desc())
            .limit(1)
        ).first()
        reason = (approval.decision_data or {}).get("reason")
        found[approval.workflow_id or ""] = Rejection(
            workflow_id=approval.workflow_id or "",
            approval_id=approval.id,
            step=approval.step_name or "",
            decided_by=approval.decided_by,
            comment=" ".join((comment or (reason if isinstance(reason, str) else "") or "").split()),
        )
    return found


def rejection_of(db: Database, workflow_id: str) -> Rejection | None:
    """``rejections`` for one workflow: the request a person rejected that stopped it, or None."""
    with db.read() as session:
        return rejections(session, [workflow_id]).get(workflow_id)
