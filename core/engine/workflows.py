"""Workflow operations every interface shares: create, start, pause, resume,
cancel, retry, list, inspect. Each is one transaction with its events."""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.approvals.engine import cancel_open_approvals
from core.base.errors import (
    ApproverOutsideTenant,
    DefinitionError,
    InvalidInput,
    InvalidTransition,
    NotAuthorized,
)
from core.base.states import check_workflow_transition
from core.base.storable import unstorable
from core.definitions.workflow import (
    WorkflowDefinition,
    definition_dict,
    named_people,
    parse_definition,
    unanswerable_approvals,
    unregistered_tools,
)
from core.engine.checkpoints import refuse_reserved_name, take_checkpoint
from core.engine.create_path import created_events, insert_workflow
from core.engine.rollback_hold import refuse_during_rollback
from core.identity.groups import not_in_tenant
from core.identity.permissions import Action, check
from core.records import rows as store

# Listings and JSON forms live in core.records (light, for a fast CLI); the
# interfaces reach them here too, with the operations.
from core.records.as_json import approval_dict, checkpoint_dict, event_dict, workflow_dict  # noqa: F401
from core.records.listing import WorkflowPage, list_workflows  # noqa: F401
from core.store.tables import (
    ApprovalRequest,
    StepRun,
    Workflow,
    WorkflowCheckpoint,
    WorkflowEvent,
    new_id,
    utcnow,
)
from core.store.tenancy import tenant_of, tenant_scope
from core.telemetry import tracing

if TYPE_CHECKING:
    from core.store.db import Database


def create_workflow(
    db: Database,
    definition: WorkflowDefinition | dict[str, Any],
    *,
    name: str | None = None,
    description: str | None = None,
    input_data: dict[str, Any] | None = None,
    created_by: str = "system",
    start: bool = True,
    tenant: str | None = None,
    tools: Container[str] | None = None,
) -> Workflow:
    """Store a validated workflow; with ``start`` it is runnable at once.

    A workflow started by a tenant's user belongs to that tenant; such a
    user cannot start one for another tenant, nor name a user of another
    tenant to decide anything in it (``ApproverOutsideTenant``). ``tools``, the tool names the
    runners know (the caller's registry, loaded as the runners load theirs),
    refuses a definition naming any other tool now rather than at run time.
    """
    # Who may start is read first, then the definition and input are checked (nothing
    # written yet: a refusal writes nothing), then the rows are written all at once.
    with db.session() as session:
        if db.is_postgres:
            # The checks only read (each statement its own snapshot either way, at READ
            # COMMITTED): they run without a BEGIN, and the rows go out in one implicit
            # transaction, committed by its pipeline's Sync (core.engine.pipelined).
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        own = check(session, created_by, Action.WORKFLOWS_START).tenant
        if not isinstance(definition, WorkflowDefinition):  # unknown tools listed with the rest
            definition = parse_definition(definition, tools=tools)
        elif tools is not None and (problems := unregistered_tools(definition, tools)):
            raise DefinitionError(problems + unanswerable_approvals(definition, created_by))
        if problems := unanswerable_approvals(definition, created_by):
            raise DefinitionError(problems)
        input_data = dict(input_data or {})
        if problems := unstorable({"input": input_data, "name": name, "description": description}):
            raise InvalidInput(problems)
        if own is not None and tenant is not None and tenant != own:
            raise NotAuthorized(
                f"{created_by} belongs to tenant {own!r} and cannot start workflows for {tenant!r}."
            )
        tenant = tenant if tenant is not None else own
        # A person of another tenant could never see or answer its requests: refused now,
        # not left pending for nobody (core.identity.groups.not_in_tenant).
        if problems := not_in_tenant(session, named_people(definition), tenant):
            raise ApproverOutsideTenant(problems)
        # Its id is drawn here, so the row is inserted once, already started, with its
        # events, and its trail begins in this transaction (no lock to take): written
        # with Core statements, on PostgreSQL in one round trip (core.engine.create_path).
        now = utcnow()
        workflow = Workflow(
            id=new_id(),
            name=name or definition.name or "Untitled workflow",
            description=description if description is not None else definition.description,
            definition=definition_dict(definition),
            input_data=input_data,
            context={**definition.context, **input_data},
            status="pending",
            created_by=created_by,
            tenant=tenant,
            created_at=now,
            updated_at=now,
        )
        if tracing.enabled():  # the root of the workflow's one trace, resumed by every runner
            workflow.trace_context = tracing.root_context(workflow.id, workflow.name)
        if start:  # as store.transition_workflow and store.schedule would
            check_workflow_transition("pending", "running")
            workflow.status = "running"
            workflow.started_at = workflow.runnable_at = now
        insert_workflow(
            session, db, workflow, created_events(workflow, input_data, started=start), started=start
        )
    return workflow


def start_workflow(db: Database, workflow_id: str, actor: str) -> Workflow:
    with db.session() as session:
        workflow = store.get_workflow(session, workflow_id, for_update=True, tenant=tenant_of(session, actor))
        check(session, actor, Action.WORKFLOWS_START, workflow=workflow)
        store.transition_workflow(session, workflow, "running", actor)
        store.schedule(session, workflow)
        return workflow


def pause_workflow(db: Database, workflow_id: str, actor: str, reason: str = "") -> Workflow:
    with db.session() as session:
        workflow = store.get_workflow(session, workflow_id, for_update=True, tenant=tenant_of(session, actor))
        check(session, actor, Action.WORKFLOWS_PAUSE, workflow=workflow)
        store.transition_workflow(session, workflow, "paused", actor, reason=reason or None)
        return workflow


def resume_workflow(db: Database, workflow_id: str, actor: str) -> Workflow:
    """Resume a paused workflow; back to waiting if its approval is still open."""
    with db.session() as session:
        workflow = store.get_workflow(session, workflow_id, for_update=True, tenant=tenant_of(session, actor))
        check(session, actor, Action.WORKFLOWS_RESUME, workflow=workflow)
        refuse_during_rollback(session, workflow, "resumed")
        if workflow.status != "paused":
            raise InvalidTransition(f"Only a paused workflow can be resumed; this one is {workflow.status}.")
        run = session.get(StepRun, workflow.current_step_run_id) if workflow.current_step_run_id else None
        approval = session.get(ApprovalRequest, run.approval_id) if run and run.approval_id else None
        if (
            run is not None
            and run.status == "waiting_approval"
            and approval is not None
            and approval.status == "pending"
        ):
            store.transition_workflow(session, workflow, "waiting_approval", actor)
            return workflow
        store.transition_workflow(session, workflow, "running", actor)
        _schedule_unless_leased(session, workflow)
        return workflow


def retry_workflow(db: Database, workflow_id: str, actor: str) -> Workflow:
    """Run a failed workflow again from its failed step."""
    with db.session() as session:
        workflow = store.get_workflow(session, workflow_id, for_update=True, tenant=tenant_of(session, actor))
        check(session, actor, Action.WORKFLOWS_RETRY, workflow=workflow)
        refuse_during_rollback(session, workflow, "retried")
        if workflow.status != "failed":
            raise InvalidTransition(f"Only a failed workflow can be retried; this one is {workflow.status}.")
        # The failed step starts afresh (attempt 1, its own idempotency key);
        # the steps before it keep their outputs and are not run again.
        store.append_event(
            session,
            "workflow.retried",
            actor,
            workflow_id=workflow.id,
            step_name=failed_step_name(workflow),
            data={
                "step": failed_step_name(workflow),
                "index": workflow.current_step,
                "error": workflow.error,
            },
        )
        workflow.current_step_run_id = None
        workflow.error = None
        store.transition_workflow(session, workflow, "running", actor, reason="retry")
        store.schedule(session, workflow)
        _outputs_loaded(workflow)
        return workflow


def _outputs_loaded(workflow: Workflow) -> None:
    """Load the workflow's outputs (its output runs) while its session is open, so
    the caller can read ``step_outputs`` from the detached row (the REST API does)."""
    workflow.step_outputs  # noqa: B018  (the read loads them)


def failed_step_name(workflow: Workflow) -> str | None:
    """The step a failed workflow stopped at (where a retry starts again)."""
    steps = workflow.definition.get("steps", [])
    if 0 <= workflow.current_step < len(steps):
        name = steps[workflow.current_step].get("name")
        return str(name) if name else None
    return None


def cancel_workflow(db: Database, workflow_id: str, actor: str, reason: str = "") -> Workflow:
    with db.session() as session:
        workflow = store.get_workflow(session, workflow_id, for_update=True, tenant=tenant_of(session, actor))
        check(session, actor, Action.WORKFLOWS_CANCEL, workflow=workflow)
        refuse_during_rollback(session, workflow, "cancelled")
        store.transition_workflow(session, workflow, "cancelled", actor, reason=reason or None)
        cancel_open_approvals(session, workflow_id, actor, reason or "workflow cancelled")
        return workflow


def create_checkpoint(
    db: Database,
    workflow_id: str,
    name: str,
    actor: str,
    *,
    description: str = "",
    step_name: str | None = None,
) -> WorkflowCheckpoint:
    with db.session() as session:
        workflow = store.get_workflow(session, workflow_id, for_update=True, tenant=tenant_of(session, actor))
        check(session, actor, Action.WORKFLOWS_CHECKPOINT, workflow=workflow)
        refuse_reserved_name(name)
        return take_checkpoint(session, workflow, name, actor, description=description, step_name=step_name)


def _schedule_unless_leased(session: Any, workflow: Workflow) -> None:
    # A runner still finishing a step keeps its lease and simply goes on.
    if workflow.lease_owner and workflow.lease_expires_at and workflow.lease_expires_at > utcnow():
        workflow.runnable_at = utcnow()
        return
    store.schedule(session, workflow)


# -- reading ------------------------------------------------------------------


def get_workflow(db: Database, workflow_id: str, *, tenant: str | None = None) -> Workflow:
    """The workflow as the viewer of ``tenant`` sees it (another tenant's is unknown)."""
    with db.read() as session:
        return store.get_workflow(session, workflow_id, tenant=tenant)


def events_of(
    db: Database, workflow_id: str, *, limit: int | None = None, tenant: str | None = None
) -> list[WorkflowEvent]:
    with db.read() as session:
        store.get_workflow(session, workflow_id, tenant=tenant)
        query = select(WorkflowEvent).where(WorkflowEvent.workflow_id == workflow_id)
        if limit is not None:
            rows = session.scalars(query.order_by(WorkflowEvent.id.desc()).limit(limit)).all()
            return list(reversed(rows))
        return list(session.scalars(query.order_by(WorkflowEvent.id)).all())


def step_runs_of(db: Database, workflow_id: str, *, tenant: str | None = None) -> list[StepRun]:
    with db.read() as session:
        if tenant is not None:
            store.get_workflow(session, workflow_id, tenant=tenant)
        return list(
            session.scalars(
                select(StepRun).where(StepRun.workflow_id == workflow_id).order_by(StepRun.id)
            ).all()
        )


def checkpoints_of(db: Database, workflow_id: str, *, tenant: str | None = None) -> list[WorkflowCheckpoint]:
    with db.read() as session:
        store.get_workflow(session, workflow_id, tenant=tenant)
        return list(
            session.scalars(
                select(WorkflowCheckpoint)
                .where(WorkflowCheckpoint.workflow_id == workflow_id)
                .order_by(WorkflowCheckpoint.id)
            ).all()
        )


def approvals_of(db: Database, workflow_id: str, *, tenant: str | None = None) -> list[ApprovalRequest]:
    with db.read() as session:
        return list(
            session.scalars(
                tenant_scope(tenant)
                .apply(select(ApprovalRequest), ApprovalRequest.tenant)
                .where(ApprovalRequest.workflow_id == workflow_id)
                .order_by(ApprovalRequest.created_at)
            ).all()
        )


def workflow_status(db: Database, workflow_id: str, *, tenant: str | None = None) -> dict[str, Any]:
    """The seed's comprehensive status: step, progress, approvals, events, checkpoints."""
    workflow = get_workflow(db, workflow_id, tenant=tenant)
    steps = workflow.definition.get("steps", [])
    current = steps[workflow.current_step]["name"] if workflow.current_step < len(steps) else None
    return {
        "id": workflow.id,
        "name": workflow.name,
        "status": workflow.status,
        "current_step": current,
        "current_step_index": workflow.current_step,
        "progress": {"completed": len(workflow.step_outputs), "total": len(steps)},
        "error": workflow.error,
        "context": workflow.context,
        "step_outputs": workflow.step_outputs,
        "pending_approvals": [
            approval_dict(a) for a in approvals_of(db, workflow_id) if a.status == "pending"
        ],
        "recent_events": [event_dict(e) for e in events_of(db, workflow_id, limit=20)],
        "checkpoints": [checkpoint_dict(c) for c in checkpoints_of(db, workflow_id)],
        "created_by": workflow.created_by,
        "created_at": workflow.created_at.isoformat(),
        "updated_at": workflow.updated_at.isoformat(),
    }
