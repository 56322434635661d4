"""``python -m core users disable EMAIL`` and ``users enable EMAIL`` (core.identity.account_state)."""

from __future__ import annotations

import typer

from cli.support import DEFAULT_ACTOR, Actor, open_database


def users_disable(email: str, actor: Actor = DEFAULT_ACTOR) -> None:
    """Disable an account until it is enabled again (users:manage).

    Its sessions end; its sign-in, API tokens, email links and Slack clicks are refused.
    """
    from core.identity.account_state import disable_user

    user = disable_user(open_database(), email, actor=actor)
    typer.echo(f"disabled {user.email}")


def users_enable(email: str, actor: Actor = DEFAULT_ACTOR) -> None:
    """Enable a disabled account again (users:manage); it signs in anew."""
    from core.identity.account_state import enable_user

    user = enable_user(open_database(), email, actor=actor)
    typer.echo(f"enabled {user.email}")


def register(users_app: typer.Typer) -> None:
    users_app.command("disable")(users_disable)
    users_app.command("enable")(users_enable)
