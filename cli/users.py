"""``python -m core users ...``: local accounts for the dashboard.

Registered by ``cli.main``; the helpers all command modules share are in
``cli.support``. Core is imported inside each command (fast ``--help``).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.support import DEFAULT_ACTOR, Actor, AsJson, open_database, print_json, table

users_app = typer.Typer(no_args_is_help=True, help="Local accounts for the dashboard.")


@users_app.command("add")
def users_add(
    email: str,
    role: Annotated[
        str, typer.Option(help="admin, approver, viewer or service (agents and systems that start workflows)")
    ] = "approver",
    password: Annotated[str | None, typer.Option(help="Password (prompted if omitted).")] = None,
    group: Annotated[list[str] | None, typer.Option(help="Group membership (repeatable).")] = None,
    tenant: Annotated[str | None, typer.Option(help="The tenant the account belongs to.")] = None,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Create or update a local account (users:manage)."""
    from core.base.errors import Invalid
    from core.identity.users import add_user

    db = open_database()
    if tenant is not None:
        from core.tenants.registry import get_tenant

        get_tenant(db, tenant)  # an unknown tenant is refused before anything is written

    if password is None and role != "service":
        if not sys.stdin.isatty():
            raise Invalid("Give --password, or run in a terminal to be asked.")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = add_user(db, email, role=role, password=password, groups=group, tenant=tenant, actor=actor)
    typer.echo(f"{user.email} {user.role}" + (f" tenant {user.tenant}" if user.tenant else ""))


@users_app.command("remove")
def users_remove(email: str, actor: Actor = DEFAULT_ACTOR) -> None:
    """Remove a local account (users:manage): its sessions and API tokens stop working."""
    from core.identity.users import remove_user

    remove_user(open_database(), email, actor=actor)
    typer.echo(f"removed {email.strip().lower()}")


@users_app.command("logout-everywhere")
def users_logout_everywhere(email: str, actor: Actor = DEFAULT_ACTOR) -> None:
    """End every dashboard and gateway session of an account (sign out everywhere)."""
    from core.identity.users import end_sessions

    end_sessions(open_database(), email, actor=actor)
    typer.echo(f"ended every session of {email.strip().lower()}")


@users_app.command("list")
def users_list(as_json: AsJson = False) -> None:
    """List local accounts."""
    from core.identity.users import list_users

    rows = list_users(open_database())
    if as_json:
        print_json(
            [
                {
                    "email": u.email,
                    "role": u.role,
                    "groups": u.groups,
                    "tenant": u.tenant,
                    "disabled_at": u.disabled_at,
                }
                for u in rows
            ]
        )
        return
    table(
        [
            [u.email, u.role, ",".join(u.groups), u.tenant or "-", "disabled" if u.disabled_at else "active"]
            for u in rows
        ],
        ["EMAIL", "ROLE", "GROUPS", "TENANT", "STATE"],
    )
