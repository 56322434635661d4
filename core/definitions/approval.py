"""An approval step's configuration (``approval_config``): who is asked, the form or
budget asked for, levels, expiry and escalation, what may be edited."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from core.definitions.limits import MAX_TITLE_LENGTH, ApproverList, Duration, check_amount
from core.definitions.safe_schema import schema_problems_at_load
from core.definitions.timers import EscalationChain, ReminderShare, apply_timer_rules
from core.identity.groups import ADMINS_GROUP


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FormField(BaseModel):
    """One field of the seed's ``form_fields`` list; other JSON Schema keywords pass through."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    type: Literal["string", "number", "integer", "boolean", "array", "object"] = "string"
    title: str | None = None
    description: str | None = None
    required: bool = False


class BudgetLevel(_Strict):
    """Approvers needed once the amount reaches ``min_amount``; levels decide in order."""

    name: str | None = None
    min_amount: Annotated[float, BeforeValidator(check_amount)] = 0
    approvers: ApproverList = Field(min_length=1)
    threshold: int = Field(default=1, ge=1)


def _share(value: Any) -> Any:
    """``50%`` or ``0.5``: a share of the timeout, more than 0 and less than 1."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError("must be a percentage such as 50%") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError("must be a share of the timeout between 0% and 100% (e.g. 50%)")
    return float(value)


class BackupApprover(_Strict):
    """``backup: {to: deputy@x.com, after: 50%}``: also ask ``to`` when nobody has
    answered once ``after`` of the timeout has passed (core.approvals.delegation)."""

    to: str = Field(min_length=1, max_length=320)
    after: Annotated[float, BeforeValidator(_share)] = 0.5


class ApprovalConfig(_Strict):
    title: str | None = Field(default=None, max_length=MAX_TITLE_LENGTH)
    description: str = ""
    type: Literal["binary", "form", "budget"] = "binary"
    requested_from: ApproverList = Field(default_factory=list)
    required_approvers: ApproverList = Field(default_factory=list)
    approval_threshold: int = Field(default=1, ge=1)
    # A single reject decides, unless this is false: then the request is
    # rejected only once the threshold can no longer be reached.
    reject_decides: bool = True
    allow_self_approval: bool = False
    allow_modify: bool | None = None
    timeout: Duration | None = None
    on_timeout: Literal["reject", "approve", "escalate"] = "reject"
    # Levels asked in turn, each when the previous one's timeout passes (core.approvals.expiry).
    escalate_to: EscalationChain = Field(default_factory=list)
    # What the final expiry does; fails closed (reject) unless stated.
    on_expiry: Literal["reject", "approve"] | None = None
    # Re-notify before the deadline, at these shares of the time to answer (core.approvals.reminders).
    remind: list[ReminderShare] | None = None
    # ``veto``: the call runs when ``window`` ends unless someone vetoes (core.approvals.veto).
    mode: Literal["approval", "veto"] = "approval"
    window: Duration | None = None
    channels: list[str] | None = None
    channel_configs: dict[str, Any] = Field(default_factory=dict)
    context_data: dict[str, Any] = Field(default_factory=dict)
    form_fields: list[FormField] | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    ui_schema: dict[str, Any] | None = None
    levels: list[BudgetLevel] | None = None
    # The argument of the guarded call a budget approval sets to the approved amount.
    amount_argument: str = Field(default="amount", min_length=1)
    # Template paths (``input.order_id``, ``context.customer``) whose values an
    # approver is shown beside a request that guards no call.
    show: list[str] | None = None
    # Who is also asked when the first approvers have not answered within a share of the timeout.
    backup: BackupApprover | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_seed_spellings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "approval_type" in data:
            alias = data.pop("approval_type")
            if "type" in data and data["type"] != alias:
                raise ValueError("type|approval_type and type disagree; give one")
            data["type"] = alias
        if "required_approver" in data:  # the seed's agent-tool spelling
            data.setdefault("requested_from", data.pop("required_approver"))
        ctx = data.get("context_data")
        if isinstance(ctx, dict) and "form_fields" in ctx and "form_fields" not in data:
            data["form_fields"] = ctx["form_fields"]
        return data

    @field_validator("json_schema")
    @classmethod
    def _schema_is_valid(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            try:
                validator_for(schema).check_schema(schema)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
            if problems := schema_problems_at_load(schema, ""):
                raise ValueError("; ".join(problems))
        return schema

    @model_validator(mode="after")
    def _rules(self) -> ApprovalConfig:
        apply_timer_rules(self)  # reminders, escalation chains, on_expiry, veto windows
        if self.on_timeout == "escalate" and not self.escalate_to:
            raise ValueError("escalate_to|required when on_timeout is escalate")
        if self.levels and self.type != "budget":
            raise ValueError("levels|only budget approvals have levels")
        if self.backup is not None and not self.timeout:
            raise ValueError("backup|needs a timeout: the backup is asked after a share of it")
        if self.form_fields is not None and self.json_schema is not None:
            raise ValueError("schema|give either form_fields or schema, not both")
        for index, form_field in enumerate(self.form_fields or []):
            problems = schema_problems_at_load(
                form_field.model_dump(exclude_none=True), f"form_fields[{index}]"
            )
            if problems:
                raise ValueError("; ".join(problems))
        if self.type == "budget" and "amount" in self.context_data:
            try:
                check_amount(self.context_data["amount"])
            except ValueError as exc:
                raise ValueError(f"context_data.amount|{exc}") from None
        named = list(dict.fromkeys(self.requested_from + self.required_approvers))
        if (
            not self.levels
            and named
            and all("@" in a for a in named)
            and self.approval_threshold > len(named)
        ):
            raise ValueError(
                f"approval_threshold|{self.approval_threshold} approvals are needed "
                f"but only {len(named)} approver(s) are named, so the request "
                "could never be approved"
            )
        for index, level in enumerate(self.levels or []):
            if all("@" in a for a in level.approvers) and level.threshold > len(level.approvers):
                raise ValueError(
                    f"levels[{index}].threshold|{level.threshold} approvals are "
                    f"needed but only {len(level.approvers)} approver(s) are named"
                )
        return self

    @property
    def deadline_seconds(self) -> float | None:
        """Seconds a request (or each escalation level) has: the veto window or the timeout."""
        return self.window if self.mode == "veto" else self.timeout

    @property
    def expiry_action(self) -> Literal["reject", "approve"]:
        """What the final expiry does: ``on_expiry``, else ``on_timeout``'s, else reject."""
        if self.on_expiry is not None:
            return self.on_expiry
        return "approve" if self.on_timeout == "approve" else "reject"

    @property
    def approvers(self) -> list[str]:
        """Who is asked; the ``admins`` group when the config names nobody."""
        listed = list(dict.fromkeys(self.requested_from + self.required_approvers))
        return listed or [ADMINS_GROUP]

    def named_people(self) -> list[tuple[str, str]]:
        """Every person (an email, not a group) named to decide, with where:
        ``("requested_from[0]", "amy@x.com")``; approvers, budget levels, the
        escalation chain and the backup."""
        return [(where, person) for where, person in self.named_principals() if "@" in person]

    def named_principals(self) -> list[tuple[str, str]]:
        """``named_people`` and the groups named beside them, with where."""
        named = [(f"requested_from[{i}]", a) for i, a in enumerate(self.requested_from)]
        named += [(f"required_approvers[{i}]", a) for i, a in enumerate(self.required_approvers)]
        for n, level in enumerate(self.levels or []):
            named += [(f"levels[{n}].approvers[{i}]", a) for i, a in enumerate(level.approvers)]
        for n, chain_level in enumerate(self.escalate_to):
            named += [(f"escalate_to[{n}][{i}]", a) for i, a in enumerate(chain_level)]
        if self.backup is not None:
            named.append(("backup.to", self.backup.to))
        return named

    @property
    def modify_allowed(self) -> bool:
        if self.allow_modify is not None:
            return self.allow_modify
        return self.type in ("form", "budget")
