"""The REST API over workflows, approvals, checkpoints and rollback.

Every operation is one call into core; the token's user is the actor and,
for answers, the approver, so the engine's own authorization applies: core
checks each action against the user's role and the token's scopes
(core.identity.permissions) and a refusal is a 403 naming the action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Query, Request, status

from core.approvals.engine import ApprovalEngine
from core.approvals.once import ANY, respond_once
from core.engine import workflows as ops
from core.engine.checkpoints import rollback
from core.engine.tools import default_registry
from gateway.auth import CallerDep, database
from gateway.errors import COMMON_RESPONSES
from gateway.schemas import (
    ID_PATTERN,
    Answer,
    ApprovalDetailOut,
    ApprovalOut,
    CheckpointCreate,
    CheckpointOut,
    EventOut,
    Me,
    Reason,
    ResponseOut,
    RollbackOut,
    RollbackRequest,
    WorkflowCreate,
    WorkflowDetailOut,
    WorkflowOut,
    WorkflowPageOut,
    WorkflowStatus,
)

if TYPE_CHECKING:
    from core.store.db import Database

router = APIRouter(prefix="/api", responses=COMMON_RESPONSES)

WorkflowId = Annotated[str, Path(pattern=ID_PATTERN, description="A workflow id.")]
ApprovalId = Annotated[str, Path(pattern=ID_PATTERN, description="An approval request id.")]


def _db(request: Request) -> Database:
    return database(request)


@router.get("/me", response_model=Me, tags=["auth"])
def me(caller: CallerDep) -> Me:
    """Who the API token belongs to."""
    return Me(
        email=caller.email,
        token_name=caller.token_name,
        scopes=list(caller.scopes) if caller.scopes is not None else None,
    )


# -- workflows ---------------------------------------------------------------------


@router.post(
    "/workflows", response_model=WorkflowOut, status_code=status.HTTP_201_CREATED, tags=["workflows"]
)
def create_workflow(body: WorkflowCreate, request: Request, caller: CallerDep) -> WorkflowOut:
    """Create a workflow from a definition; with ``start`` it is runnable at once."""
    # A gateway started on its own database has loaded the runners' tool modules: a
    # definition naming another tool is refused now (422, by path), not at run time.
    workflow = ops.create_workflow(
        _db(request),
        body.definition,
        name=body.name,
        input_data=body.input,
        created_by=caller.email,
        start=body.start,
        tools=getattr(request.app.state, "tools", None),
    )
    return WorkflowOut.of(workflow)


@router.get("/workflows", response_model=WorkflowPageOut, tags=["workflows"])
def list_workflows(
    request: Request,
    caller: CallerDep,
    status_: Annotated[WorkflowStatus | None, Query(alias="status")] = None,
    search: Annotated[str | None, Query(max_length=200, description="Text in the name or id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> WorkflowPageOut:
    """Workflows, newest first, filtered and paged on the server."""
    page = ops.list_workflows(
        _db(request), status=status_, search=search, limit=limit, offset=offset, tenant=caller.tenant
    )
    return WorkflowPageOut(
        total=page.total, limit=limit, offset=offset, items=[WorkflowOut.listed(w) for w in page.rows]
    )


@router.get("/workflows/{workflow_id}", response_model=WorkflowDetailOut, tags=["workflows"])
def get_workflow(workflow_id: WorkflowId, request: Request, caller: CallerDep) -> WorkflowDetailOut:
    """A workflow with its events, open approvals and checkpoints."""
    db = _db(request)
    workflow = ops.get_workflow(db, workflow_id, tenant=caller.tenant)
    return WorkflowDetailOut(
        **WorkflowOut.of(workflow).model_dump(),
        events=[EventOut.of(e) for e in ops.events_of(db, workflow_id)],
        pending_approvals=[
            ApprovalOut.of(a) for a in ops.approvals_of(db, workflow_id) if a.status == "pending"
        ],
        checkpoints=[CheckpointOut.of(c) for c in ops.checkpoints_of(db, workflow_id)],
    )


@router.post("/workflows/{workflow_id}/pause", response_model=WorkflowOut, tags=["workflows"])
def pause(workflow_id: WorkflowId, body: Reason, request: Request, caller: CallerDep) -> WorkflowOut:
    return WorkflowOut.of(ops.pause_workflow(_db(request), workflow_id, caller.email, body.reason))


@router.post("/workflows/{workflow_id}/resume", response_model=WorkflowOut, tags=["workflows"])
def resume(workflow_id: WorkflowId, request: Request, caller: CallerDep) -> WorkflowOut:
    return WorkflowOut.of(ops.resume_workflow(_db(request), workflow_id, caller.email))


@router.post("/workflows/{workflow_id}/cancel", response_model=WorkflowOut, tags=["workflows"])
def cancel(workflow_id: WorkflowId, body: Reason, request: Request, caller: CallerDep) -> WorkflowOut:
    """Cancel a workflow and its open approvals."""
    return WorkflowOut.of(ops.cancel_workflow(_db(request), workflow_id, caller.email, body.reason))


@router.post("/workflows/{workflow_id}/retry", response_model=WorkflowOut, tags=["workflows"])
def retry(workflow_id: WorkflowId, request: Request, caller: CallerDep) -> WorkflowOut:
    """Run a failed workflow again from its failed step."""
    return WorkflowOut.of(ops.retry_workflow(_db(request), workflow_id, caller.email))


# -- checkpoints and rollback ----------------------------------------------------------


@router.get("/workflows/{workflow_id}/checkpoints", response_model=list[CheckpointOut], tags=["checkpoints"])
def list_checkpoints(workflow_id: WorkflowId, request: Request, caller: CallerDep) -> list[CheckpointOut]:
    return [CheckpointOut.of(c) for c in ops.checkpoints_of(_db(request), workflow_id, tenant=caller.tenant)]


@router.post(
    "/workflows/{workflow_id}/checkpoints",
    response_model=CheckpointOut,
    status_code=status.HTTP_201_CREATED,
    tags=["checkpoints"],
)
def create_checkpoint(
    workflow_id: WorkflowId, body: CheckpointCreate, request: Request, caller: CallerDep
) -> CheckpointOut:
    """Take a checkpoint of the workflow's state now."""
    checkpoint = ops.create_checkpoint(
        _db(request), workflow_id, body.name, caller.email, description=body.description
    )
    return CheckpointOut.of(checkpoint)


@router.post("/workflows/{workflow_id}/rollback", response_model=RollbackOut, tags=["checkpoints"])
def rollback_workflow(
    workflow_id: WorkflowId, body: RollbackRequest, request: Request, caller: CallerDep
) -> RollbackOut:
    """Roll back to a checkpoint (compensating later steps); the workflow is left paused."""
    result = rollback(
        _db(request),
        default_registry,
        workflow_id,
        checkpoint_name=body.checkpoint,
        reason=body.reason,
        actor=caller.email,
    )
    return RollbackOut.model_validate(result.__dict__)


# -- approvals --------------------------------------------------------------------------


@router.get("/approvals", response_model=list[ApprovalOut], tags=["approvals"])
def list_approvals(
    request: Request,
    caller: CallerDep,
    workflow_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="A workflow's open requests.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ApprovalOut]:
    """Open requests, most urgent first: the caller's, or a workflow's."""
    engine = ApprovalEngine(_db(request))
    rows = engine.list_pending_approvals(
        None if workflow_id else caller.email, workflow_id, limit=limit, offset=offset, tenant=caller.tenant
    )
    return [ApprovalOut.of(a) for a in rows]


@router.get("/approvals/{approval_id}", response_model=ApprovalDetailOut, tags=["approvals"])
def get_approval(approval_id: ApprovalId, request: Request, caller: CallerDep) -> ApprovalDetailOut:
    """An approval request with its votes."""
    engine = ApprovalEngine(_db(request))
    approval = engine.get(approval_id, tenant=caller.tenant)
    return ApprovalDetailOut(
        **ApprovalOut.of(approval).model_dump(),
        responses=[ResponseOut.of(r) for r in engine.responses(approval_id)],
    )


@router.post("/approvals/{approval_id}/respond", response_model=ApprovalDetailOut, tags=["approvals"])
def respond(approval_id: ApprovalId, body: Answer, request: Request, caller: CallerDep) -> ApprovalDetailOut:
    """Answer as the token's user (channel ``api``); the answer is validated by the engine.
    With ``level`` (and ``digest``), it counts only while the request is at that level (and
    guards that call): else 409, nothing recorded (core.approvals.once)."""
    engine = ApprovalEngine(_db(request))
    approval = respond_once(
        _db(request),
        key=None,
        what="This answer",
        approval_id=approval_id,
        approver=caller.email,
        decision=body.decision,
        data=body.data,
        comment=body.comment,
        channel="api",
        level=body.level,
        digest=body.digest if body.digest is not None else ANY,
        allow_for_days=body.allow_for_days,
        allow_when=body.allow_when,
    )
    return ApprovalDetailOut(
        **ApprovalOut.of(approval).model_dump(),
        responses=[ResponseOut.of(r) for r in engine.responses(approval_id)],
    )
