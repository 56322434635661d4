"""A tenant's named flows: an agent type, its tools and parameters.

A chat session runs one flow: ``flow_agent_spec`` turns it into the
``AgentSpec`` to run (the flow's profile, if it names one, overridden by its
type, tools and parameters). Flows are validated before anything is written;
each problem names its field (``agent_type: must be one of ...``,
``tools[1]: 'x' is not a registered tool``, ``parameters.max_steps: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from core.base.errors import InvalidTenantSettings, TenantFlowNotFound
from core.definitions.agents import BUILTIN_TOOLS, AgentSpec
from core.identity.permissions import check_can_manage_tenants
from core.records import rows as store
from core.store.tables import TenantFlow, utcnow
from core.store.tenancy import tenant_row

if TYPE_CHECKING:
    from core.engine.tools import ToolRegistry
    from core.store.db import Database

FLOW_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
AGENT_TYPES: tuple[str, ...] = get_args(AgentSpec.model_fields["type"].annotation)


def validation_problems(exc: ValidationError) -> list[str]:
    """pydantic's errors as ``field: message`` lines."""
    found = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "value"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        found.append(f"{where}: {message}")
    return found


class FlowFields(BaseModel):
    """A flow as given: checked before anything is written."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = Field(default="", max_length=2000)
    agent_type: str = "tool_calling"
    profile: str | None = Field(default=None, max_length=100)
    tools: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not FLOW_NAME_PATTERN.fullmatch(value):
            raise ValueError("letters, digits, '_', '.' and '-', starting with a letter or digit")
        return value

    @field_validator("agent_type")
    @classmethod
    def _agent_type(cls, value: str) -> str:
        if value not in AGENT_TYPES:
            raise ValueError(f"must be one of {', '.join(AGENT_TYPES)}")
        return value


# Flow parameters are AgentSpec fields (type and tools have their own columns).
FLOW_PARAMETERS = tuple(f for f in AgentSpec.model_fields if f not in ("type", "tools"))


def _flow_spec(flow: FlowFields | TenantFlow, base: AgentSpec | None) -> AgentSpec:
    """The agent a flow runs: its profile (or the defaults), then its type, tools and parameters."""
    data = (base or AgentSpec()).model_dump()
    data["type"] = flow.agent_type
    if flow.tools:
        data["tools"] = list(flow.tools)
    data.update(dict(flow.parameters or {}))
    return AgentSpec.model_validate(data)


def _check_parameters(flow: FlowFields) -> list[str]:
    unknown = sorted(set(flow.parameters) - set(FLOW_PARAMETERS))
    if unknown:
        return [
            f"parameters.{k}: unknown agent parameter (one of {', '.join(FLOW_PARAMETERS)})" for k in unknown
        ]
    try:
        _flow_spec(flow, None)
    except ValidationError as exc:
        return [f"parameters.{p}" for p in validation_problems(exc)]
    return []


def flow_agent_spec(
    db: Database, tenant: str, name: str, profiles: Mapping[str, dict[str, Any]] | None = None
) -> AgentSpec:
    """The ``AgentSpec`` a session of this flow runs: the flow's profile (if it
    names one, looked up in ``profiles``, the stored agent profiles, then the
    registered ones), overridden by its agent type, tools and parameters. Its model
    is then resolved with ``resolve_model_spec(db, tenant, user, spec.model)``."""
    from core.definitions.agents import resolve_spec

    flow = get_flow(db, tenant, name)
    return _flow_spec(flow, resolve_spec(flow.profile, profiles) if flow.profile else None)


def _check_tools(tools: list[str], registry: ToolRegistry | None) -> list[str]:
    from core.engine.tools import default_registry

    known = {*(registry or default_registry).names(), *BUILTIN_TOOLS}
    return [
        f"tools[{i}]: {name!r} is not a registered tool (known: {', '.join(sorted(known))})"
        for i, name in enumerate(tools)
        if name not in known
    ]


def save_flow(
    db: Database,
    tenant: str,
    fields: dict[str, Any],
    *,
    actor: str = "system",
    registry: ToolRegistry | None = None,
) -> TenantFlow:
    """Create or replace a tenant's flow; every problem is named by its field."""
    tools = fields.get("tools")
    problems = (
        _check_tools([t for t in tools if isinstance(t, str)], registry) if isinstance(tools, list) else []
    )
    try:
        flow = FlowFields.model_validate(fields)
    except ValidationError as exc:
        problems = validation_problems(exc) + problems
    else:
        problems += _check_parameters(flow)
    if problems:
        raise InvalidTenantSettings(problems, what="flow")
    with db.session() as session:
        check_can_manage_tenants(session, actor)
        tenant_row(session, tenant)
        row = session.get(TenantFlow, (tenant, flow.name))
        now = utcnow()
        if row is None:
            row = TenantFlow(tenant=tenant, name=flow.name, created_at=now)
            session.add(row)
        row.description = flow.description
        row.agent_type = flow.agent_type
        row.profile = flow.profile
        row.tools = list(dict.fromkeys(flow.tools))
        row.parameters = flow.parameters
        row.updated_at = now
        store.append_event(
            session, "tenant.flow_saved", actor, data={"tenant": tenant, "flow": flow_dict(row)}
        )
        return row


def list_flows(db: Database, tenant: str) -> list[TenantFlow]:
    with db.read() as session:
        tenant_row(session, tenant)
        return list(
            session.scalars(
                select(TenantFlow).where(TenantFlow.tenant == tenant).order_by(TenantFlow.name)
            ).all()
        )


def get_flow(db: Database, tenant: str, name: str) -> TenantFlow:
    with db.read() as session:
        row = session.get(TenantFlow, (tenant, name))
        if row is None:
            raise TenantFlowNotFound(f"Tenant {tenant!r} has no flow named {name!r}.")
        return row


def remove_flow(db: Database, tenant: str, name: str, *, actor: str = "system") -> None:
    with db.session() as session:
        check_can_manage_tenants(session, actor)
        row = session.get(TenantFlow, (tenant, name))
        if row is None:
            raise TenantFlowNotFound(f"Tenant {tenant!r} has no flow named {name!r}.")
        session.delete(row)
        store.append_event(session, "tenant.flow_removed", actor, data={"tenant": tenant, "flow": name})


def flow_dict(row: TenantFlow) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "agent_type": row.agent_type,
        "profile": row.profile,
        "tools": list(row.tools or []),
        "parameters": dict(row.parameters or {}),
    }


__all__ = [
    "AGENT_TYPES",
    "FLOW_PARAMETERS",
    "FlowFields",
    "save_flow",
    "list_flows",
    "get_flow",
    "remove_flow",
    "flow_agent_spec",
    "flow_dict",
    "validation_problems",
]
