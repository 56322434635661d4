"""Checkpoints and rollback (a saga: compensations run newest first).

A rollback holds the workflow from its first transaction to its last (a lease
owned by the rollback, renewed while it runs), so no runner, resume or second
rollback acts on it meanwhile. It commits each compensation as done before
running the next, so a rollback interrupted by a crash or a failing
compensation can be run again and carries on where it stopped, never
compensating a step twice.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from core.approvals.engine import cancel_open_approvals
from core.base.config import get_settings
from core.base.errors import (
    CheckpointNotFound,
    CompensationFailed,
    InvalidTransition,
    ReservedCheckpointName,
    WorkflowBusy,
    quoted,
)
from core.definitions.workflow import CompensateSpec, Step, WorkflowDefinition
from core.engine.rollback_hold import (
    ROLLBACK_LEASE,
    LeaseHeartbeat,
    check_owner,
    lease_live,
    let_go,
    refuse_during_rollback,
)
from core.engine.tools import ToolContext, ToolRegistry, render_args
from core.identity.permissions import Action, check
from core.records import rows as store
from core.store.tables import (
    StepRun,
    Workflow,
    WorkflowCheckpoint,
    new_id,
    outputs_query,
    utcnow,
)
from core.store.tenancy import tenant_of

if TYPE_CHECKING:
    from core.store.db import Database

# The names of the checkpoints the engine takes itself (``before:<step>`` before an
# approval, ``after:<step>`` after a step marked create_checkpoint): nobody else may take one.
AUTOMATIC_PREFIXES = ("before:", "after:")

ROLLBACK_FROM = frozenset({"running", "waiting_approval", "paused", "failed", "completed"})

log = structlog.get_logger(__name__)


def take_checkpoint(
    session: Session,
    workflow: Workflow,
    name: str,
    actor: str,
    *,
    description: str = "",
    step_name: str | None = None,
    watermark: int | None = None,
) -> WorkflowCheckpoint:
    """Record position, context and the step-run watermark in the caller's transaction.

    Outputs are not copied: the checkpoint's are those of the workflow's runs
    up to the watermark (``WorkflowCheckpoint.step_outputs``), so its size
    does not grow with the steps before it. ``watermark``, when the caller
    knows it (the newest step run of the workflow), saves a SELECT.
    """
    if watermark is None:
        watermark = (
            session.scalar(select(func.max(StepRun.id)).where(StepRun.workflow_id == workflow.id)) or 0
        )
    checkpoint = WorkflowCheckpoint(
        workflow_id=workflow.id,
        name=name,
        description=description,
        step_index=workflow.current_step,
        step_name=step_name,
        context=dict(workflow.context),
        step_run_watermark=watermark,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(checkpoint)
    session.flush()
    store.append_event(
        session,
        "checkpoint.created",
        actor,
        workflow_id=workflow.id,
        step_name=step_name,
        data={"checkpoint_id": checkpoint.id, "name": name, "step_index": workflow.current_step},
    )
    return checkpoint


def refuse_reserved_name(name: str) -> None:
    """Refuse a checkpoint name of the engine's own (``after:<step>``, ``before:<step>``)
    for a checkpoint taken by a person or an agent."""
    if name.startswith(AUTOMATIC_PREFIXES):
        raise ReservedCheckpointName(
            f"The checkpoint name {quoted(name)} is reserved: names starting with "
            f"{' or '.join(AUTOMATIC_PREFIXES)} are those of the checkpoints Countersign "
            "takes itself. Choose another name."
        )


def find_checkpoint(session: Session, workflow_id: str, name: str | None) -> WorkflowCheckpoint:
    query = select(WorkflowCheckpoint).where(
        WorkflowCheckpoint.workflow_id == workflow_id,
        WorkflowCheckpoint.superseded_by_event_id.is_(None),
    )
    if name is not None:
        query = query.where(WorkflowCheckpoint.name == name)
        if name.startswith(AUTOMATIC_PREFIXES):
            # The engine's own checkpoint of that name first (its step's, not an agent's):
            # one an agent or a person took under the name before such names were refused
            # never shadows it.
            automatic = (WorkflowCheckpoint.step_name == name.split(":", 1)[1]) & ~(
                WorkflowCheckpoint.created_by.startswith("agent:")
            )
            query = query.order_by(case((automatic, 0), else_=1))
    checkpoint = session.scalars(query.order_by(WorkflowCheckpoint.id.desc()).limit(1)).first()
    if checkpoint is None:
        if name is None:
            raise CheckpointNotFound(f"Workflow {workflow_id} has no checkpoint to roll back to.")
        raise CheckpointNotFound(f"Workflow {workflow_id} has no checkpoint named {name!r}.")
    return checkpoint


@dataclass
class RollbackResult:
    workflow_id: str
    checkpoint: str
    checkpoint_id: int
    cancelled_approvals: list[str] = field(default_factory=list)
    compensations: list[dict[str, Any]] = field(default_factory=list)


def rollback(
    db: Database,
    registry: ToolRegistry,
    workflow_id: str,
    *,
    checkpoint_name: str | None,
    reason: str,
    actor: str,
) -> RollbackResult:
    """Restore a workflow to a checkpoint and leave it paused there.

    The first transaction pauses the workflow and leases it to this rollback
    (``rollback:<id>``), so until the last one lets go runners do not claim it,
    a second rollback is refused with ``WorkflowBusy`` and so are resume, retry
    and cancel (``refuse_during_rollback``). A heartbeat renews the lease while
    compensations run; a rollback whose process died leaves a lease that lapses
    after ``COUNTERSIGN_LEASE_SECONDS``, and a later rollback carries on with the
    compensations left (a completed one is recorded ``compensated`` and never
    run again). Every later transaction checks the lease is still this rollback's.
    """
    lease_seconds = get_settings().lease_seconds
    token = f"{ROLLBACK_LEASE}{new_id()}"
    with db.session() as session:
        workflow = store.get_workflow(session, workflow_id, for_update=True, tenant=tenant_of(session, actor))
        check(session, actor, Action.WORKFLOWS_ROLLBACK, workflow=workflow)
        if workflow.status not in ROLLBACK_FROM:
            raise InvalidTransition(f"A {workflow.status} workflow cannot be rolled back.")
        refuse_during_rollback(session, workflow, "rolled back again")
        # Any live lease means a runner is mid-step (a pause lets the step
        # finish), whose effect would land after the rollback uncompensated.
        if lease_live(workflow):
            raise WorkflowBusy()
        checkpoint = find_checkpoint(session, workflow_id, checkpoint_name)
        result = RollbackResult(workflow_id, checkpoint.name, checkpoint.id)
        if workflow.status != "paused":
            store.transition_workflow(session, workflow, "paused", actor, reason=f"rollback: {reason}")
        workflow.lease_owner = token
        workflow.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
        workflow.runnable_at = None
        result.cancelled_approvals = cancel_open_approvals(
            session, workflow_id, actor, f"rolled back to {checkpoint.name}"
        )
        store.append_event(
            session,
            "rollback.started",
            actor,
            workflow_id=workflow_id,
            data={"checkpoint": checkpoint.name, "checkpoint_id": checkpoint.id, "reason": reason},
        )
        definition = WorkflowDefinition.model_validate(workflow.definition)
        to_undo = session.scalars(
            select(StepRun)
            .where(
                StepRun.workflow_id == workflow_id,
                StepRun.id > checkpoint.step_run_watermark,
                StepRun.status == "completed",
            )
            .order_by(StepRun.id.desc())
        ).all()
        pending = [(run.id, run.step_name, run.step_index, run.output) for run in to_undo]

    heartbeat = LeaseHeartbeat(db, workflow_id, token, lease_seconds)
    heartbeat.start()
    try:
        for undo in pending:
            _compensate(db, registry, workflow, definition, checkpoint, result, token, actor, undo)
        heartbeat.stop()
        with db.session() as session:
            workflow = store.get_workflow(session, workflow_id, for_update=True)
            check_owner(workflow, token)
            _restore(session, workflow, checkpoint, reason, actor, result)
            workflow.lease_owner = workflow.lease_expires_at = None
    except BaseException:
        heartbeat.stop()
        let_go(db, workflow_id, token)
        raise
    return result


def _compensate(
    db: Database,
    registry: ToolRegistry,
    workflow: Workflow,
    definition: WorkflowDefinition,
    checkpoint: WorkflowCheckpoint,
    result: RollbackResult,
    token: str,
    actor: str,
    pending: tuple[int, str, int, dict[str, Any] | None],
) -> None:
    """Undo one completed step run, then record it, while the rollback holds the workflow."""
    run_id, step_name, step_index, output = pending
    workflow_id = workflow.id
    with db.session() as session:  # still ours, and the run not undone meanwhile
        check_owner(store.get_workflow(session, workflow_id, for_update=True), token)
        current = session.get(StepRun, run_id)
        if current is None or current.status != "completed":
            return
    step = definition.steps[step_index] if step_index < len(definition.steps) else None
    entry: dict[str, Any] = {"step": step_name, "step_run_id": run_id}
    compensate = _compensation_of(step, registry)
    if step is not None and compensate is not None:
        scope = {
            "input": workflow.input_data,
            "context": workflow.context,
            "steps": workflow.step_outputs,
            "output": output or {},
        }
        try:
            args = render_args(compensate.args, scope)
            if _takes_output(registry, compensate.tool):
                args.setdefault("output", output or {})
            compensation = registry.call(
                compensate.tool,
                args,
                ToolContext(workflow_id, step_name, f"{workflow_id}/compensate/{run_id}"),
            )
        except Exception as exc:
            with db.session() as session:
                row = store.get_workflow(session, workflow_id, for_update=True)
                store.append_event(
                    session,
                    "rollback.failed",
                    actor,
                    workflow_id=workflow_id,
                    step_name=step_name,
                    data={
                        "checkpoint": checkpoint.name,
                        "error": str(exc),
                        "compensations": result.compensations,
                    },
                )
                if row.lease_owner == token:  # a rollback run again may carry on at once
                    row.lease_owner = row.lease_expires_at = None
            raise CompensationFailed(
                f"Compensating step {step_name!r} with tool {compensate.tool!r} failed: "
                f"{exc}. Steps compensated so far stay compensated; run the rollback again "
                "to continue."
            ) from exc
        entry.update(tool=compensate.tool, result=compensation)
        status = "compensated"
    else:
        entry["tool"] = None
        status = "rolled_back"
    with db.session() as session:
        check_owner(store.get_workflow(session, workflow_id, for_update=True), token)
        run = session.get(StepRun, run_id, with_for_update=True)
        if run is not None and run.status == "completed":
            run.status = status
            store.append_event(
                session,
                f"step.{status}",
                actor,
                workflow_id=workflow_id,
                step_name=step_name,
                data=entry,
            )
    result.compensations.append(entry)


def _restore(
    session: Session,
    workflow: Workflow,
    checkpoint: WorkflowCheckpoint,
    reason: str,
    actor: str,
    result: RollbackResult,
) -> None:
    """The rollback's last transaction: position, context and outputs as at the checkpoint."""
    workflow_id = workflow.id
    before = store.snapshot(workflow)
    # The outputs restored are rebuilt from the step runs up to the
    # watermark (the checkpoint holds no copy of them).
    restored = {
        name: output
        for name, output in session.execute(
            outputs_query(
                workflow_id, watermark=checkpoint.step_run_watermark, taken_at=checkpoint.created_at
            )
        )
    }
    event = store.append_event(
        session,
        "workflow.rolled_back",
        actor,
        workflow_id=workflow_id,
        before=before,
        after={
            "status": workflow.status,
            "current_step": checkpoint.step_index,
            "context": checkpoint.context,
            "step_outputs": restored,
        },
        data={
            "checkpoint": checkpoint.name,
            "checkpoint_id": checkpoint.id,
            "reason": reason,
            "cancelled_approvals": result.cancelled_approvals,
            "compensations": result.compensations,
        },
    )
    session.flush()
    now = utcnow()
    workflow.context = dict(checkpoint.context)
    workflow.current_step = checkpoint.step_index
    workflow.current_step_run_id = None
    workflow.error = None
    workflow.updated_at = now
    newer = (StepRun.workflow_id == workflow_id) & (StepRun.id > checkpoint.step_run_watermark)
    session.execute(
        update(StepRun)
        .where(newer, StepRun.status.in_(("running", "waiting_approval", "failed")))
        .values(status="rolled_back")
        .execution_options(synchronize_session=False)
    )
    # Every later run's output leaves the workflow's outputs now, the
    # compensated ones included (until here they were still its outputs),
    # and so does that of a run the checkpoint saw started but not finished.
    session.execute(
        update(StepRun)
        .where(
            StepRun.workflow_id == workflow_id,
            StepRun.undone_at.is_(None),
            or_(StepRun.id > checkpoint.step_run_watermark, StepRun.finished_at > checkpoint.created_at),
        )
        .values(undone_at=now)
        .execution_options(synchronize_session=False)
    )
    for later in session.scalars(
        select(WorkflowCheckpoint).where(
            WorkflowCheckpoint.workflow_id == workflow_id,
            WorkflowCheckpoint.id > checkpoint.id,
            WorkflowCheckpoint.superseded_by_event_id.is_(None),
        )
    ):
        later.superseded_by_event_id = event.id


def _takes_output(registry: ToolRegistry, name: str) -> bool:
    """Whether a compensation tool takes the undone step's ``output`` (a parameter
    named so, or ``**kwargs``); one that does not is called without it."""
    parameters = inspect.signature(registry.get(name).function).parameters.values()
    return any(p.name == "output" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _compensation_of(step: Step | None, registry: ToolRegistry) -> CompensateSpec | None:
    """What undoes a step: its own ``compensate``, else its tool's registered one."""
    if step is None:
        return None
    if step.compensate is not None:
        return step.compensate
    if step.type == "tool" and step.tool is not None and step.tool in registry:
        default = registry.get(step.tool).compensate
        if default is not None:
            return CompensateSpec(tool=default)
    return None
