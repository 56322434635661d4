"""The REST API over standing rules (core.approvals.standing_rules): list, create,
change and revoke, as on the Policies page and with ``python -m core rules``.

The token's user is the actor: listing needs ``audit:read``, every change
``policies:manage`` in the rule's tenant (core checks both, and the token's
scopes); a rule is never deleted, only revoked, so the trail keeps what it
released.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from core.approvals import standing_rules
from gateway.auth import CallerDep, database
from gateway.errors import COMMON_RESPONSES

router = APIRouter(prefix="/api/rules", responses=COMMON_RESPONSES, tags=["rules"])

RuleId = Annotated[int, Path(ge=1, le=2**62, description="A standing rule's id.")]
Days = Field(
    gt=0,
    le=standing_rules.MAX_DAYS,
    allow_inf_nan=False,
    description=f"How long it lasts, from now (at most {standing_rules.MAX_DAYS}).",
)
Condition = Field(
    min_length=1,
    max_length=1000,
    description='What the call\'s arguments must meet, e.g. "args.amount <= 200" ("True": any call).',
)
WorkflowName = Field(
    default=None, max_length=200, description="Only calls from workflows of this name (default: any)."
)
Note = Field(default="", max_length=2000, description="Why the rule exists (shown with it).")


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1, max_length=200, description="The tool whose calls it releases.")
    condition: str = Condition
    days: float = Days
    workflow_name: str | None = WorkflowName
    note: str = Note


class RuleUpdate(BaseModel):
    """What to change; what is left out stays."""

    model_config = ConfigDict(extra="forbid")

    condition: str | None = Field(default=None, min_length=1, max_length=1000)
    days: float | None = Field(default=None, gt=0, le=standing_rules.MAX_DAYS, allow_inf_nan=False)
    workflow_name: str | None = WorkflowName
    note: str | None = Field(default=None, max_length=2000)


class RuleOut(BaseModel):
    id: int
    tool: str
    condition: str
    workflow_name: str | None
    tenant: str | None
    state: str = Field(description="active, expired or revoked.")
    expires_at: str
    created_by: str
    created_at: str
    note: str
    source_approval_id: str | None
    uses: int
    last_used_at: str | None
    revoked_by: str | None
    revoked_at: str | None


def _out(rule: dict[str, Any]) -> RuleOut:
    return RuleOut.model_validate(rule)


@router.get("", response_model=list[RuleOut])
def list_rules(
    request: Request,
    caller: CallerDep,
    include_ended: Annotated[bool, Query(description="Also the revoked and expired ones.")] = False,
) -> list[RuleOut]:
    """The rules the caller sees (their tenant's; a platform user's, all), newest first."""
    rules = standing_rules.list_rules(database(request), caller.email, include_ended=include_ended)
    return [_out(r) for r in rules]


@router.post("", response_model=RuleOut, status_code=status.HTTP_201_CREATED)
def create_rule(body: RuleCreate, request: Request, caller: CallerDep) -> RuleOut:
    """Allow calls of ``tool`` whose arguments meet ``condition`` for ``days`` days."""
    return _out(
        standing_rules.create_rule(
            database(request),
            caller.email,
            tool=body.tool,
            condition=body.condition,
            days=body.days,
            workflow_name=body.workflow_name,
            note=body.note,
        )
    )


@router.patch("/{rule_id}", response_model=RuleOut)
def update_rule(rule_id: RuleId, body: RuleUpdate, request: Request, caller: CallerDep) -> RuleOut:
    """Change a live rule's condition, expiry (``days`` from now), workflow or note."""
    return _out(
        standing_rules.update_rule(
            database(request),
            caller.email,
            rule_id,
            condition=body.condition,
            days=body.days,
            workflow_name=body.workflow_name,
            note=body.note,
        )
    )


@router.post("/{rule_id}/revoke", response_model=RuleOut)
def revoke_rule(rule_id: RuleId, request: Request, caller: CallerDep) -> RuleOut:
    """End a rule now: later calls it would have released are asked about again."""
    return _out(standing_rules.revoke_rule(database(request), caller.email, rule_id))
