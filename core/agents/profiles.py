"""Agent profiles in the database: create, list, show, edit, delete.

A profile is validated as the agent settings a task step would use
(``core.definitions.agents.AgentSpec``), so a bad one is refused with the path of
each problem (``max_steps: ...``) and nothing is written. Every change is a
``workflow_events`` row without a workflow (``agent_profile.created``,
``.updated``, ``.deleted``) with who did it and the profile before and after.

Deleting a profile is refused while a workflow that is not finished
(completed, cancelled or failed) names it in a task step (``agent: <name>``);
the error names those workflows. Finished workflows keep their stored
definition; a failed one retried after the deletion fails with "No agent
profile is named ...".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from core.base.errors import (
    AgentProfileExists,
    AgentProfileInUse,
    AgentProfileNotFound,
    InvalidAgentProfile,
)
from core.definitions.agents import NAME_PATTERN, AgentSpec
from core.definitions.workflow import error_path
from core.identity.permissions import check_platform_editor
from core.records import rows as store
from core.store.tables import AgentProfile, Workflow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database

# A workflow in one of these no longer needs its profiles (see the module doc).
DONE_STATUSES = ("completed", "cancelled", "failed")
FIELDS = (
    "name",
    "role",
    "instructions",
    "agent_type",
    "model_provider",
    "model_id",
    "tools",
    "held_tools",
    "max_steps",
    "settings",
)
AGENT_TYPES = ("tool_calling", "code")
PROVIDERS = ("rehearsal", "openai", "ollama", "inference_client", "litellm", "transformers", "python")
# What ``settings`` may hold: the AgentSpec fields without a column of their own.
SETTINGS_KEYS = frozenset({"model", "approval", "authorized_imports", "executor"})
SETTINGS_MODEL_KEYS = frozenset({"api_base", "api_key_env", "options"})
_SPEC_TO_FIELD = {
    ("type",): "agent_type",
    ("model", "provider"): "model_provider",
    ("model", "model_id"): "model_id",
}


class ProfileFields(BaseModel):
    """The shape of a profile; the agent settings are checked by AgentSpec."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: str = Field(default="", max_length=200)
    instructions: str = ""
    agent_type: str = "tool_calling"
    model_provider: str | None = None
    model_id: str | None = Field(default=None, max_length=200)
    tools: list[str] = Field(default_factory=list)
    # Names, or {name, when} for a held tool with a gate (AgentSpec).
    held_tools: list[str | dict[str, Any]] = Field(default_factory=list)
    max_steps: int = 10
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError("use letters, digits, spaces, '_', '.' or '-', starting with a letter or digit")
        return name


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "literal_error":
        return "must be one of " + str(error.get("ctx", {}).get("expected", ""))
    return str(error["msg"]).replace("Value error, ", "")


def _spec_field(loc: tuple[Any, ...]) -> str:
    for size in (2, 1):
        if tuple(loc[:size]) in _SPEC_TO_FIELD:
            return error_path((_SPEC_TO_FIELD[tuple(loc[:size])], *loc[size:]))
    if loc and loc[0] in ("tools", "held_tools", "max_steps", "instructions"):
        return error_path(loc)
    return error_path(("settings", *loc))


def spec_data(fields: dict[str, Any]) -> dict[str, Any]:
    """The AgentSpec settings of a profile (role folded into the instructions)."""
    settings = dict(fields.get("settings") or {})
    model = {
        "provider": fields.get("model_provider") or None,
        "model_id": fields.get("model_id") or None,
        **dict(settings.pop("model", None) or {}),
    }
    role, instructions = fields.get("role") or "", fields.get("instructions") or ""
    text = "\n".join(x for x in (f"Your role: {role}." if role else "", instructions) if x)
    return {
        "type": fields.get("agent_type") or "tool_calling",
        "model": model,
        "tools": list(fields.get("tools") or []),
        "held_tools": list(fields.get("held_tools") or []),
        "max_steps": fields.get("max_steps", 10),
        "instructions": text or None,
        **settings,
    }


def validate_profile(data: dict[str, Any]) -> dict[str, Any]:
    """The profile's fields, normalised; ``InvalidAgentProfile`` naming every problem."""
    try:
        fields = ProfileFields.model_validate(data).model_dump()
    except ValidationError as exc:
        raise InvalidAgentProfile(
            [f"{error_path(e['loc'], empty='(profile)')}: {_message(e)}" for e in exc.errors()]
        ) from None
    problems = [f"settings.{key}: unknown field" for key in sorted(set(fields["settings"]) - SETTINGS_KEYS)]
    model = fields["settings"].get("model", {})
    if not isinstance(model, dict):
        problems.append("settings.model: must be a mapping")
    else:
        problems += [
            f"settings.model.{key}: unknown field" for key in sorted(set(model) - SETTINGS_MODEL_KEYS)
        ]
    if problems:
        raise InvalidAgentProfile(problems)
    try:
        spec = AgentSpec.model_validate(spec_data(fields))
    except ValidationError as exc:
        raise InvalidAgentProfile([f"{_spec_field(e['loc'])}: {_message(e)}" for e in exc.errors()]) from None
    fields["tools"], fields["held_tools"] = spec.tools, spec.held_entries()
    return fields


def profile_dict(row: AgentProfile) -> dict[str, Any]:
    return {
        "name": row.name,
        "role": row.role,
        "instructions": row.instructions,
        "agent_type": row.agent_type,
        "model_provider": row.model_provider,
        "model_id": row.model_id,
        "tools": list(row.tools),
        "held_tools": list(row.held_tools),
        "max_steps": row.max_steps,
        "settings": dict(row.settings),
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def _fields(row: AgentProfile) -> dict[str, Any]:
    return {key: value for key, value in profile_dict(row).items() if key in FIELDS}


def list_profiles(db: Database) -> list[AgentProfile]:
    with db.read() as session:
        return list(session.scalars(select(AgentProfile).order_by(AgentProfile.name)))


def get_profile(db: Database, name: str) -> AgentProfile:
    with db.read() as session:
        row = session.get(AgentProfile, name)
    if row is None:
        raise AgentProfileNotFound(f"No agent profile is named {name!r}.")
    return row


def find_spec_data(db: Database, name: str) -> dict[str, Any] | None:
    """A stored profile's AgentSpec settings, or None (for ``resolve_spec``)."""
    with db.read() as session:
        row = session.get(AgentProfile, name)
        return None if row is None else spec_data(_fields(row))


def stored_profiles(db: Database) -> dict[str, dict[str, Any]]:
    """Every stored profile's AgentSpec settings by name (for ``resolve_spec``)."""
    return {row.name: spec_data(_fields(row)) for row in list_profiles(db)}


def create_profile(db: Database, data: dict[str, Any], actor: str) -> AgentProfile:
    fields = validate_profile(data)
    with db.session() as session:
        check_platform_editor(session, actor, "agent profiles")
        if session.get(AgentProfile, fields["name"]) is not None:
            raise AgentProfileExists(f"An agent profile named {fields['name']!r} already exists.")
        now = utcnow()
        row = AgentProfile(**fields, created_by=actor, created_at=now, updated_at=now)
        session.add(row)
        store.append_event(
            session, "agent_profile.created", actor, after=fields, data={"profile": fields["name"]}
        )
    return row


def _locked(session: Session, name: str) -> AgentProfile:
    """The agent profile ``name``, its row locked for the change, or ``AgentProfileNotFound``."""
    row = session.get(AgentProfile, name, with_for_update=True)
    if row is None:
        raise AgentProfileNotFound(f"No agent profile is named {name!r}.")
    return row


def update_profile(db: Database, name: str, changes: dict[str, Any], actor: str) -> AgentProfile:
    """Change the given fields (not the name); the result is validated whole."""
    if "name" in changes and changes["name"] != name:
        raise InvalidAgentProfile(["name: a profile cannot be renamed; create a new one"])
    with db.session() as session:
        check_platform_editor(session, actor, "agent profiles")
        row = _locked(session, name)
        before = _fields(row)
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise InvalidAgentProfile([f"{key}: unknown field" for key in unknown])
        after = validate_profile({**before, **changes})
        for key, value in after.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        store.append_event(
            session, "agent_profile.updated", actor, before=before, after=after, data={"profile": name}
        )
    return row


def workflows_using(session: Session, name: str) -> list[tuple[str, str]]:
    """(id, name) of the workflows not finished whose task steps name this profile."""
    rows = session.execute(
        select(Workflow.id, Workflow.name, Workflow.definition)
        .where(Workflow.status.not_in(DONE_STATUSES))
        .order_by(Workflow.created_at)
    )
    return [
        (wid, wname)
        for wid, wname, definition in rows
        if any(
            isinstance(step, dict) and step.get("agent") == name
            for step in (definition or {}).get("steps") or []
        )
    ]


def delete_profile(db: Database, name: str, actor: str) -> None:
    """Delete a profile; refused while an unfinished workflow or a team uses it."""
    with db.session() as session:
        check_platform_editor(session, actor, "agent profiles")
        row = _locked(session, name)
        users = workflows_using(session, name)
        if users:
            shown = ", ".join(f"{wname} ({wid})" for wid, wname in users[:10])
            more = f" and {len(users) - 10} more" if len(users) > 10 else ""
            raise AgentProfileInUse(
                f"Agent profile {name!r} is used by workflows that are not completed, cancelled "
                f"or failed: {shown}{more}. Finish or cancel them first."
            )
        from core.agents.teams import teams_with_member

        teams = teams_with_member(session, name)
        if teams:
            raise AgentProfileInUse(
                f"Agent profile {name!r} is a member of agent teams: "
                f"{', '.join(teams)}. Remove it from them first."
            )
        before = _fields(row)
        session.delete(row)
        store.append_event(session, "agent_profile.deleted", actor, before=before, data={"profile": name})


__all__ = [
    "AgentProfile",
    "create_profile",
    "delete_profile",
    "find_spec_data",
    "get_profile",
    "list_profiles",
    "profile_dict",
    "spec_data",
    "update_profile",
    "validate_profile",
    "workflows_using",
]
