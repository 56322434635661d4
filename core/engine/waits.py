"""What a workflow waits for, and what a rollback would do, for every page to say.

``waiting_on`` names, for each workflow, its open requests: the title, who
is asked now, the level out of how many, and the deadline, so a page can say
"waits for finance@example.com to answer 'Pay' (level 1 of 2)" with a link
to the request. ``rollback_plan`` lists, before anything runs, the
compensations a rollback to a checkpoint would run (newest step first) and
the requests it would cancel: the same selection ``core.engine.checkpoints.rollback``
makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.approvals.engine import levels_for
from core.base.states import APPROVAL_OPEN
from core.definitions.approval import ApprovalConfig
from core.definitions.workflow import WorkflowDefinition
from core.engine.checkpoints import _compensation_of, find_checkpoint
from core.identity.permissions import Action, check
from core.records import rows as store
from core.store.tables import ApprovalRequest, StepRun
from core.store.tenancy import tenant_of, tenant_scope

if TYPE_CHECKING:
    from core.engine.tools import ToolRegistry
    from core.store.db import Database


@dataclass(frozen=True)
class Waiting:
    approval_id: str
    title: str
    approvers: list[str]
    level: int  # from 1
    levels: int
    expires_at: datetime | None

    @property
    def sentence(self) -> str:
        level = f" (level {self.level} of {self.levels})" if self.levels > 1 else ""
        return f"waits for {', '.join(self.approvers)} to answer {self.title!r}{level}"


def _levels(approval: ApprovalRequest) -> int:
    try:
        config = ApprovalConfig.model_validate(approval.config)
        amount = approval.context_data.get("amount") if approval.approval_type == "budget" else None
        return max(
            len(levels_for(config, amount if isinstance(amount, int | float) else None)), approval.level + 1
        )
    except ValueError:  # a config stored before a change of format: say only the level
        return approval.level + 1


def waiting_on(
    db: Database, workflow_ids: list[str], *, viewer: str | None = None
) -> dict[str, list[Waiting]]:
    """Each workflow's open requests (those a ``viewer`` sees), oldest first."""
    ids = [i for i in dict.fromkeys(workflow_ids) if i]
    if not ids:
        return {}
    found: dict[str, list[Waiting]] = {}
    with db.read() as session:
        tenant = tenant_of(session, viewer) if viewer else None
        query = (
            tenant_scope(tenant)
            .apply(select(ApprovalRequest), ApprovalRequest.tenant)
            .where(ApprovalRequest.workflow_id.in_(ids), ApprovalRequest.status == APPROVAL_OPEN)
        )
        for row in session.scalars(query.order_by(ApprovalRequest.created_at)):
            found.setdefault(row.workflow_id or "", []).append(
                Waiting(row.id, row.title, list(row.approvers), row.level + 1, _levels(row), row.expires_at)
            )
    return found


@dataclass(frozen=True)
class PlannedCompensation:
    step: str
    tool: str | None  # None: the step has nothing that undoes it


@dataclass(frozen=True)
class RollbackPlan:
    checkpoint: str
    compensations: list[PlannedCompensation]  # newest step first
    cancelled_requests: list[str]  # titles


def rollback_plan(
    db: Database, registry: ToolRegistry, workflow_id: str, checkpoint_name: str, actor: str
) -> RollbackPlan:
    """What ``rollback`` to ``checkpoint_name`` would do now, writing nothing."""
    with db.read() as session:
        workflow = store.get_workflow(session, workflow_id, tenant=tenant_of(session, actor))
        check(session, actor, Action.WORKFLOWS_ROLLBACK, workflow=workflow)
        checkpoint = find_checkpoint(session, workflow_id, checkpoint_name)
        definition = WorkflowDefinition.model_validate(workflow.definition)
        runs = session.scalars(
            select(StepRun)
            .where(
                StepRun.workflow_id == workflow_id,
                StepRun.id > checkpoint.step_run_watermark,
                StepRun.status == "completed",
            )
            .order_by(StepRun.id.desc())
        ).all()
        planned = []
        for run in runs:
            step = definition.steps[run.step_index] if run.step_index < len(definition.steps) else None
            compensate = _compensation_of(step, registry)
            planned.append(PlannedCompensation(run.step_name, compensate.tool if compensate else None))
        open_titles = list(
            session.scalars(
                select(ApprovalRequest.title).where(
                    ApprovalRequest.workflow_id == workflow_id, ApprovalRequest.status == APPROVAL_OPEN
                )
            )
        )
    return RollbackPlan(checkpoint.name, planned, open_titles)
