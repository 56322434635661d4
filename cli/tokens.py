"""``python -m core tokens ...``: API tokens for the REST gateway.

Registered by ``cli.main``; the helpers all command modules share are in
``cli.support``. Core is imported inside each command (fast ``--help``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.support import DEFAULT_ACTOR, Actor, AsJson, open_database, print_json, table

tokens_app = typer.Typer(no_args_is_help=True, help="API tokens for the REST gateway.")


@tokens_app.command("create")
def tokens_create(
    for_user: Annotated[str, typer.Option("--user", "--for", help="The account the token acts as.")],
    name: Annotated[str, typer.Option(help="What or who uses the token.")] = "api",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="An action the token may do, e.g. workflows:start (repeatable; default: "
            "everything the user's role allows, never more).",
        ),
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime: 30d, 12h, 90m, 2w (default: until revoked).")
    ] = None,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Make an API token; it is printed once and only its hash is stored."""
    from core.identity.api_tokens import create_token, parse_lifetime

    lifetime = parse_lifetime(expires) if expires else None
    row, token = create_token(open_database(), for_user, name, scopes=scope, expires_in=lifetime, actor=actor)
    typer.echo(token)
    until = f", expires {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else ""
    typer.echo(
        f"token {row.id} {row.name!r} for {row.user_email}, scopes "
        f"{' '.join(row.scopes or [])}{until}; store it now, it is not shown again",
        err=True,
    )


@tokens_app.command("list")
def tokens_list(
    for_user: Annotated[str | None, typer.Option("--user", "--for", help="Only this user's.")] = None,
    as_json: AsJson = False,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """List API tokens with their scopes and expiry (never the tokens themselves)."""
    from core.identity.api_tokens import list_tokens, token_dict
    from core.store.tenancy import user_tenant

    db = open_database()
    rows = [token_dict(t) for t in list_tokens(db, for_user, tenant=user_tenant(db, actor))]
    if as_json:
        print_json(rows)
        return
    table(
        [
            [
                r["id"],
                r["name"],
                r["user"],
                " ".join(r["scopes"]),
                (r["expires_at"] or "-")[:16],
                (r["last_used_at"] or "-")[:19],
                r["state"],
            ]
            for r in rows
        ],
        ["ID", "NAME", "USER", "SCOPES", "EXPIRES", "LAST USED", "STATE"],
    )


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (tokens list).")],
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Revoke an API token at once."""
    from core.identity.api_tokens import revoke_token

    row = revoke_token(open_database(), token_id, actor)
    typer.echo(f"token {row.id} {row.name!r} revoked")
