"""``python -m core agents teams ...``: agent teams from the command line.

Registered under ``agents`` by ``cli.main``; shared helpers are in ``cli.support``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.support import AsJson, OptionalActor, acting, open_database, parse_json, print_json, table

teams_app = typer.Typer(
    no_args_is_help=True, help="Agent teams: profiles run in order, each answer the next one's input."
)

Description = Annotated[str | None, typer.Option(help="What the team is for.")]
Members = Annotated[
    list[str] | None, typer.Option("--member", help="An agent profile, in pipeline order (repeatable).")
]
ApproveBefore = Annotated[
    list[str] | None,
    typer.Option(
        "--approve-before", help="A member before whom a person approves passing the work on (repeatable)."
    ),
]
Approvers = Annotated[
    list[str] | None,
    typer.Option(
        "--approver", help="Who approves the gates: an email or a group (repeatable; default admins)."
    ),
]
Settings = Annotated[
    str | None,
    typer.Option(help='All settings as a JSON object: {"approve_before": [...], "approval": {...}}.'),
]


def _changes(
    current: dict[str, Any],
    description: str | None,
    members: list[str] | None,
    approve_before: list[str] | None,
    approvers: list[str] | None,
    settings: str | None,
) -> dict[str, Any]:
    """The options given, as team fields; ``current`` is the stored team (empty when new)."""
    changes: dict[str, Any] = {}
    if description is not None:
        changes["description"] = description
    if members:
        changes["members"] = members
    if settings is not None or approve_before or approvers:
        merged = dict(
            parse_json(settings, "--settings") if settings is not None else current.get("settings") or {}
        )
        if approve_before:
            merged["approve_before"] = approve_before
        if approvers:
            merged["approval"] = {**dict(merged.get("approval") or {}), "requested_from": approvers}
        changes["settings"] = merged
    return changes


def _pipeline(team: dict[str, Any]) -> str:
    gates = set(team["settings"].get("approve_before") or [])
    return " -> ".join(("[approval] " if m in gates else "") + m for m in team["members"])


@teams_app.command("create")
def teams_create(
    name: str,
    member: Members = None,
    description: Description = None,
    approve_before: ApproveBefore = None,
    approver: Approvers = None,
    settings: Settings = None,
    actor: OptionalActor = None,
) -> None:
    """Create an agent team."""
    from core.agents import teams

    fields = {"members": [], **_changes({}, description, member, approve_before, approver, settings)}
    row = teams.create_team(open_database(), {"name": name, **fields}, acting(actor))
    typer.echo(f"agent team {row.name} created")


@teams_app.command("list")
def teams_list(as_json: AsJson = False) -> None:
    """List agent teams."""
    from core.agents import teams

    rows = [teams.team_dict(t) for t in teams.list_teams(open_database())]
    if as_json:
        print_json(rows)
        return
    table([[r["name"], _pipeline(r), r["description"]] for r in rows], ["NAME", "MEMBERS", "DESCRIPTION"])


@teams_app.command("show")
def teams_show(name: str, as_json: AsJson = False) -> None:
    """Show one agent team and the steps its workflow runs."""
    from core.agents import teams

    team = teams.team_dict(teams.get_team(open_database(), name))
    steps = [step["name"] for step in teams.team_definition(team)["steps"]]
    if as_json:
        print_json({**team, "steps": steps})
        return
    for key, value in team.items():
        typer.echo(f"{key}: {value}")
    typer.echo(f"pipeline: {_pipeline(team)}")
    typer.echo(f"steps: {', '.join(steps)}")


@teams_app.command("edit")
def teams_edit(
    name: str,
    member: Members = None,
    description: Description = None,
    approve_before: ApproveBefore = None,
    approver: Approvers = None,
    settings: Settings = None,
    actor: OptionalActor = None,
) -> None:
    """Change an agent team: the options given replace the stored values."""
    from core.agents import teams

    db = open_database()
    current = teams.team_dict(teams.get_team(db, name))
    changes = _changes(current, description, member, approve_before, approver, settings)
    row = teams.update_team(db, name, changes, acting(actor))
    typer.echo(f"agent team {row.name} updated")


@teams_app.command("delete")
def teams_delete(name: str, actor: OptionalActor = None) -> None:
    """Delete an agent team (workflows it started run on)."""
    from core.agents import teams

    teams.delete_team(open_database(), name, acting(actor))
    typer.echo(f"agent team {name} deleted")


@teams_app.command("start")
def teams_start(
    name: str,
    task: Annotated[str, typer.Option(help="What the first member works on.")],
    tenant: Annotated[str | None, typer.Option(help="The tenant it runs for.")] = None,
    actor: OptionalActor = None,
) -> None:
    """Start the team's workflow; a runner runs it like any other."""
    from core.agents import teams

    workflow = teams.start_team(open_database(), name, task, acting(actor), tenant=tenant)
    typer.echo(f"agent team {name} started: workflow {workflow.id}")
