"""Agent teams: an ordered list of agent profiles run as a pipeline.

A team is stored in ``agent_teams`` (name, description, members in order,
settings) and started as an ordinary workflow: one ``task`` step per member
with ``agent: <profile>``, where the first member's task is the team's task
(``${input.task}``) and every later member's task is the previous member's
final answer (``${steps.<previous>.result}``, the executor's argument
templates). ``settings.approve_before`` names members before whom a person
approves passing the work on: an ordinary ``approval`` step, asked of
``settings.approval`` (an approval config; the admins group by default). A
rejected gate fails the workflow. Held tools of a member's profile ask a
person mid-step as in any task step.

Changes are validated whole (pydantic, then every member must be a stored
profile) and nothing is written when any problem is found; each change is an
``agent_team.*`` event without a workflow. The member profiles are locked
while a team is written, so a profile cannot be deleted under a team being
saved (``profiles_store.delete_profile`` refuses profiles that teams use).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from core.base.errors import (
    AgentTeamExists,
    AgentTeamNotFound,
    DefinitionError,
    InvalidAgentTeam,
    TeamTaskMissing,
)
from core.definitions.agents import NAME_PATTERN
from core.definitions.workflow import error_path, parse_approval_config, parse_definition
from core.identity.permissions import check_platform_editor
from core.records import rows as store
from core.store.tables import AgentProfile, AgentTeam, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database
    from core.store.tables import Workflow

FIELDS = ("name", "description", "members", "settings")
# The workflow's name and definition metadata say which team it runs.
WORKFLOW_PREFIX = "team:"
_NOT_IN_STEP_NAME = re.compile(r"\W")


class TeamSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve_before: list[str] = Field(default_factory=list)
    approval: dict[str, Any] = Field(default_factory=dict)


class TeamFields(BaseModel):
    """The shape of a team; members are checked against the stored profiles."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    members: list[str] = Field(min_length=1, max_length=50)
    settings: TeamSettings = Field(default_factory=TeamSettings)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError("use letters, digits, spaces, '_', '.' or '-', starting with a letter or digit")
        return name


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required"
    if error["type"] == "too_short" and error["loc"] == ("members",):
        return "name at least one agent profile"
    return str(error["msg"]).replace("Value error, ", "")


def validate_team(data: dict[str, Any]) -> dict[str, Any]:
    """The team's fields, normalised; ``InvalidAgentTeam`` naming every problem.

    Checks everything that needs no database: shape, name, members listed
    once, ``approve_before`` naming members, the gate's approval config and
    the workflow definition the team becomes.
    """
    try:
        fields = TeamFields.model_validate(data).model_dump()
    except ValidationError as exc:
        raise InvalidAgentTeam(
            [f"{error_path(e['loc'], empty='(team)')}: {_message(e)}" for e in exc.errors()]
        ) from None
    fields["members"] = [member.strip() for member in fields["members"]]
    problems = []
    seen: dict[str, int] = {}
    for index, member in enumerate(fields["members"]):
        if not member:
            problems.append(f"members[{index}]: empty profile name")
        elif member in seen:
            problems.append(
                f"members[{index}]: {member!r} is already member {seen[member] + 1}; "
                "a profile takes one place in a team"
            )
        seen.setdefault(member, index)
    settings = fields["settings"]
    problems += [
        f"settings.approve_before[{index}]: {name!r} is not a member"
        for index, name in enumerate(settings["approve_before"])
        if name not in seen
    ]
    try:
        parse_approval_config(_gate_config(fields["name"], "member", settings["approval"]))
    except DefinitionError as exc:
        problems += [p.replace("approval_config.", "settings.approval.", 1) for p in exc.problems]
    if problems:
        raise InvalidAgentTeam(problems)
    try:
        parse_definition(team_definition(fields))
    except DefinitionError as exc:
        raise InvalidAgentTeam(exc.problems) from None
    return fields


# -- the workflow a team becomes ---------------------------------------------------------


def _unique(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _gate_config(team: str, member: str, approval: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": f"Team {team}: pass the work to {member}?",
        "description": f"Approve to let {member} take the previous answer as its input; "
        "reject to stop the team.",
        **approval,
    }


def member_step_names(members: list[str]) -> list[str]:
    """Each member's step name: the profile name made safe for ``${steps.<name>}``."""
    taken: set[str] = set()
    return [_unique(_NOT_IN_STEP_NAME.sub("_", member) or "member", taken) for member in members]


def team_definition(fields: dict[str, Any]) -> dict[str, Any]:
    """The workflow definition of a team (validated by the caller)."""
    name, members = fields["name"], list(fields["members"])
    settings = fields.get("settings") or {}
    gates = set(settings.get("approve_before") or [])
    steps: list[dict[str, Any]] = []
    step_names = member_step_names(members)
    taken = set(step_names)
    previous: str | None = None
    for index, (member, step_name) in enumerate(zip(members, step_names, strict=True)):
        given = "${input.task}" if previous is None else f"${{steps.{previous}.result}}"
        if member in gates:
            steps.append(
                {
                    "name": _unique(f"approve_{step_name}", taken),
                    "type": "approval",
                    "approval_config": _gate_config(name, member, settings.get("approval") or {}),
                    "context": {
                        "team": name,
                        "next_member": member,
                        "from": members[index - 1] if index else "the team's task",
                        "input": given,
                    },
                }
            )
        steps.append(
            {
                "name": step_name,
                "type": "task",
                "task": given,
                "agent": member,
                "description": f"Team {name}: member {index + 1} of {len(members)}",
            }
        )
        previous = step_name
    return {
        "name": f"{WORKFLOW_PREFIX}{name}",
        "description": fields.get("description") or "",
        "metadata": {"team": name, "members": members},
        "steps": steps,
    }


def team_of(workflow: Workflow) -> str | None:
    """The team a workflow runs, if it was started from one."""
    team = ((workflow.definition or {}).get("metadata") or {}).get("team")
    return str(team) if team else None


# -- the store ----------------------------------------------------------------------------


def team_dict(row: AgentTeam) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "members": list(row.members),
        "settings": dict(row.settings),
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def _fields(row: AgentTeam) -> dict[str, Any]:
    return {key: value for key, value in team_dict(row).items() if key in FIELDS}


def _check_members(session: Session, members: list[str]) -> None:
    """Refuse members that are not stored profiles; lock those that are."""
    # Locked in name order, so two writers of overlapping teams queue instead of deadlocking.
    found = set(
        session.scalars(
            select(AgentProfile.name)
            .where(AgentProfile.name.in_(members))
            .order_by(AgentProfile.name)
            .with_for_update()
        )
    )
    missing = [member for member in members if member not in found]
    if missing:
        raise InvalidAgentTeam([f"members: no agent profile is named {', '.join(repr(m) for m in missing)}"])


def list_teams(db: Database) -> list[AgentTeam]:
    with db.read() as session:
        return list(session.scalars(select(AgentTeam).order_by(AgentTeam.name)))


def get_team(db: Database, name: str) -> AgentTeam:
    with db.read() as session:
        row = session.get(AgentTeam, name)
    if row is None:
        raise AgentTeamNotFound(f"No agent team is named {name!r}.")
    return row


def create_team(db: Database, data: dict[str, Any], actor: str) -> AgentTeam:
    fields = validate_team(data)
    with db.session() as session:
        check_platform_editor(session, actor, "agent teams")
        _check_members(session, fields["members"])
        if session.get(AgentTeam, fields["name"]) is not None:
            raise AgentTeamExists(f"An agent team named {fields['name']!r} already exists.")
        now = utcnow()
        row = AgentTeam(**fields, created_by=actor, created_at=now, updated_at=now)
        session.add(row)
        store.append_event(session, "agent_team.created", actor, after=fields, data={"team": fields["name"]})
    return row


def _locked(session: Session, name: str) -> AgentTeam:
    """The agent team ``name``, its row locked for the change, or ``AgentTeamNotFound``."""
    row = session.get(AgentTeam, name, with_for_update=True)
    if row is None:
        raise AgentTeamNotFound(f"No agent team is named {name!r}.")
    return row


def update_team(db: Database, name: str, changes: dict[str, Any], actor: str) -> AgentTeam:
    """Change the given fields (not the name); the result is validated whole."""
    if "name" in changes and changes["name"] != name:
        raise InvalidAgentTeam(["name: a team cannot be renamed; create a new one"])
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidAgentTeam([f"{key}: unknown field" for key in unknown])
    with db.session() as session:
        check_platform_editor(session, actor, "agent teams")
        row = _locked(session, name)
        before = _fields(row)
        after = validate_team({**before, **changes})
        _check_members(session, after["members"])
        for key, value in after.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        store.append_event(
            session, "agent_team.updated", actor, before=before, after=after, data={"team": name}
        )
    return row


def delete_team(db: Database, name: str, actor: str) -> None:
    """Delete a team; workflows it started keep their own definitions and run on."""
    with db.session() as session:
        check_platform_editor(session, actor, "agent teams")
        row = _locked(session, name)
        before = _fields(row)
        session.delete(row)
        store.append_event(session, "agent_team.deleted", actor, before=before, data={"team": name})


def teams_with_member(session: Session, profile: str) -> list[str]:
    """Names of the teams that list this profile (for the profile delete refusal)."""
    rows = session.execute(select(AgentTeam.name, AgentTeam.members).order_by(AgentTeam.name))
    return [name for name, members in rows if profile in (members or [])]


def start_team(
    db: Database, team_name: str, task: str, started_by: str, tenant: str | None = None
) -> Workflow:
    """Start the team's workflow on ``task``; runners pick it up like any other."""
    from core.engine.workflows import create_workflow

    if not task or not task.strip():
        raise TeamTaskMissing()
    fields = _fields(get_team(db, team_name))
    definition = parse_definition(team_definition(fields))
    return create_workflow(
        db, definition, input_data={"task": task.strip()}, created_by=started_by, tenant=tenant
    )


__all__ = [
    "create_team",
    "delete_team",
    "get_team",
    "list_teams",
    "member_step_names",
    "start_team",
    "team_definition",
    "team_dict",
    "team_of",
    "teams_with_member",
    "update_team",
    "validate_team",
]
