"""Request and response models of the REST API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from core.store.tables import (
        ApprovalRequest,
        ApprovalResponse,
        Workflow,
        WorkflowCheckpoint,
        WorkflowEvent,
    )

WorkflowStatus = Literal[
    "pending", "running", "waiting_approval", "paused", "completed", "failed", "cancelled"
]
Decision = Literal["approve", "reject", "modify"]
# Ids are uuids or integers; a pattern keeps control characters and
# megabyte-long strings out of queries and gives a 422 instead of a 404.
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
Text = Field(default="", max_length=10_000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ------------------------------------------------------------------------


class WorkflowCreate(_Strict):
    definition: dict[str, Any] = Field(
        description="A workflow definition (the JSON form of the YAML format)."
    )
    input: dict[str, Any] = Field(default_factory=dict, description="Input data; ${input.x} in step args.")
    name: str | None = Field(default=None, max_length=200, description="Name (default: the definition's).")
    start: bool = Field(default=True, description="Make it runnable at once.")


class Reason(_Strict):
    reason: str = Text


class CheckpointCreate(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = Text


class RollbackRequest(_Strict):
    checkpoint: str | None = Field(
        default=None, max_length=200, description="Checkpoint name (default: the latest)."
    )
    reason: str = Field(min_length=1, max_length=10_000, description="Why (recorded).")


class Answer(_Strict):
    decision: Decision
    data: dict[str, Any] = Field(
        default_factory=dict, description="The answer; must satisfy the request's response_schema."
    )
    comment: str = Text
    allow_for_days: float | None = Field(
        default=None,
        gt=0,
        le=90,
        allow_inf_nan=False,
        description=(
            "Approve, and allow calls like this for this many days: a standing rule for the call's "
            "tool in this request's tenant and workflow (needs policies:manage; docs/policy.md)."
        ),
    )
    allow_when: str | None = Field(
        default=None,
        max_length=1000,
        description=(
            'The rule\'s condition (e.g. "args.amount <= 200"); by default the same arguments and '
            "no others; each positive number from 0 up to this call's, a negative number or 0 "
            "exactly; everything else equal."
        ),
    )
    level: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            "The level of the request this answer is for (0: the first, as `level` of the "
            "request read); refused (409) once the request is at another."
        ),
    )
    digest: str | None = Field(
        default=None,
        max_length=200,
        description=(
            "The digest of the call this answer is for, as read: `released_call`'s once a level "
            "has released one, else `proposed_call`'s; refused (409) once the call has changed."
        ),
    )


class InboundAnswer(_Strict):
    """An answer from another system (POST /webhooks/inbound)."""

    approval_id: str = Field(pattern=ID_PATTERN)
    decision: Decision
    approver: str | None = Field(
        default=None, max_length=320, description="Who answers; with an API token, the token's user."
    )
    data: dict[str, Any] = Field(default_factory=dict)
    comment: str = Text
    level: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            "The level of the request this answer is for (0: the first); refused once the request "
            "is at another. A signed delivery decides once, by its webhook-id, whatever it says."
        ),
    )


# -- responses -----------------------------------------------------------------------


class WorkflowOut(BaseModel):
    id: str
    name: str
    description: str
    status: WorkflowStatus
    current_step: int
    error: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    input_data: dict[str, Any]
    context: dict[str, Any]
    step_outputs: dict[str, Any]
    unreadable: bool = Field(
        default=False,
        description="True when the row's data cannot be "
        "shown (stored before today's limits); only its id and status are.",
    )

    @classmethod
    def of(cls, w: Workflow) -> WorkflowOut:
        return cls(
            id=w.id,
            name=w.name,
            description=w.description,
            status=w.status,  # type: ignore[arg-type]
            current_step=w.current_step,
            error=w.error,
            created_by=w.created_by,
            created_at=w.created_at,
            updated_at=w.updated_at,
            started_at=w.started_at,
            finished_at=w.finished_at,
            input_data=w.input_data,
            context=w.context,
            step_outputs=w.step_outputs,
        )

    @classmethod
    def listed(cls, w: Workflow) -> WorkflowOut:
        """``of(w)``, or, for a row that cannot be shown, its id and status marked unreadable:
        one bad row never breaks a listing for everyone."""
        try:
            out = cls.of(w)
            out.model_dump_json()  # the listing's own serialisation, tried here
            return out
        except Exception as exc:  # noqa: BLE001 - any row must render
            return cls(
                id=w.id,
                name="unreadable",
                description="",
                status=w.status,  # type: ignore[arg-type]
                current_step=w.current_step,
                error=f"This workflow's stored data cannot be shown ({type(exc).__name__}).",
                created_by=w.created_by,
                created_at=w.created_at,
                updated_at=w.updated_at,
                started_at=w.started_at,
                finished_at=w.finished_at,
                input_data={},
                context={},
                step_outputs={},
                unreadable=True,
            )


class WorkflowPageOut(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[WorkflowOut]


class EventOut(BaseModel):
    id: int
    type: str
    actor: str
    step: str | None
    approval_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, e: WorkflowEvent) -> EventOut:
        return cls(
            id=e.id,
            type=e.event_type,
            actor=e.actor,
            step=e.step_name,
            approval_id=e.approval_id,
            before=e.before,
            after=e.after,
            data=e.data,
            created_at=e.created_at,
        )


class CheckpointOut(BaseModel):
    id: int
    name: str
    description: str
    step_index: int
    step_name: str | None
    created_by: str
    created_at: datetime
    superseded: bool

    @classmethod
    def of(cls, c: WorkflowCheckpoint) -> CheckpointOut:
        return cls(
            id=c.id,
            name=c.name,
            description=c.description,
            step_index=c.step_index,
            step_name=c.step_name,
            created_by=c.created_by,
            created_at=c.created_at,
            superseded=c.superseded_by_event_id is not None,
        )


class ResponseOut(BaseModel):
    approver: str
    decision: str
    channel: str
    level: int
    comment: str
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, r: ApprovalResponse) -> ResponseOut:
        return cls(
            approver=r.approver,
            decision=r.decision,
            channel=r.channel,
            level=r.level,
            comment=r.comment,
            data=r.data,
            created_at=r.created_at,
        )


class ApprovalOut(BaseModel):
    id: str
    workflow_id: str | None
    step: str | None
    title: str
    description: str
    type: str
    status: Literal["pending", "approved", "rejected", "modified", "expired", "cancelled"]
    approvers: list[str]
    threshold: int
    level: int
    requested_by: str
    context_data: dict[str, Any]
    proposed_action: dict[str, Any]
    proposed_call: dict[str, Any] | None = Field(
        default=None,
        description="The call this request guards: tool, arguments, digest and "
        'the tool\'s input schema. Answer with {"arguments": {...}} to edit it.',
    )
    released_call: dict[str, Any] | None = Field(
        default=None, description="The call the decision released (what runs), once decided."
    )
    response_schema: dict[str, Any]
    ui_schema: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decision_data: dict[str, Any] | None

    @classmethod
    def of(cls, a: ApprovalRequest) -> ApprovalOut:
        return cls(
            id=a.id,
            workflow_id=a.workflow_id,
            step=a.step_name,
            title=a.title,
            description=a.description,
            type=a.approval_type,
            status=a.status,  # type: ignore[arg-type]
            approvers=a.approvers,
            threshold=a.threshold,
            level=a.level,
            requested_by=a.requested_by,
            context_data=a.context_data,
            proposed_action=a.proposed_action,
            proposed_call=a.proposed_call,
            released_call=a.released_call,
            response_schema=a.response_schema,
            ui_schema=a.ui_schema,
            created_at=a.created_at,
            expires_at=a.expires_at,
            decided_at=a.decided_at,
            decided_by=a.decided_by,
            decision_data=a.decision_data,
        )


class ApprovalDetailOut(ApprovalOut):
    responses: list[ResponseOut]


class WorkflowDetailOut(WorkflowOut):
    events: list[EventOut]
    pending_approvals: list[ApprovalOut]
    checkpoints: list[CheckpointOut]


class CompensationOut(BaseModel):
    step: str
    step_run_id: int
    tool: str | None
    result: dict[str, Any] | None = None


class RollbackOut(BaseModel):
    workflow_id: str
    checkpoint: str
    checkpoint_id: int
    cancelled_approvals: list[str]
    compensations: list[CompensationOut]


class Me(BaseModel):
    email: str
    token_name: str | None
    scopes: list[str] | None = Field(
        default=None,
        description="What the token may do (core.identity actions); null: whatever the user's role allows.",
    )


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
