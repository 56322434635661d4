"""``python -m core sessions ...``: supervised conversations from the command line.

Registered by ``cli.main``; the helpers all command modules share are in
``cli.support``. Who may see and do
what is decided by ``core.conversations.sessions`` exactly as for the dashboard:
``--as`` names the person, a session they may not see is reported as
missing, and a refusal is one line on stderr with exit code 1.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.support import Actor, AsJson, acting, checked_actor, open_database, print_json, table

sessions_app = typer.Typer(
    no_args_is_help=True, help="Supervised conversations: list, read, take over, inject, release, close."
)

Viewer = Annotated[
    str | None,
    typer.Option("--as", help="Whose view (default: COUNTERSIGN_USER or cli:$USER).", callback=checked_actor),
]
Supervisor = Actor


def session_dict(chat: Any) -> dict[str, Any]:
    return {
        "id": chat.id,
        "tenant": chat.tenant,
        "flow": chat.flow,
        "user": chat.user_email,
        "title": chat.title,
        "status": chat.status,
        "supervisor": chat.supervisor,
        "created_at": chat.created_at.isoformat(),
        "updated_at": chat.updated_at.isoformat(),
    }


def message_dict(message: Any) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "author": message.author,
        "content": message.content,
        "visible_to_model": message.visible_to_model,
        "created_at": message.created_at.isoformat(),
    }


@sessions_app.command("list")
def sessions_list(
    viewer: Viewer = None,
    status: Annotated[str | None, typer.Option(help="active, supervised or closed.")] = None,
    as_json: AsJson = False,
) -> None:
    """The sessions this person may see (a supervisor: their tenant's, or all for the platform)."""
    from core.base.errors import Invalid
    from core.conversations import sessions as conv

    if status is not None and status not in conv.STATUSES:
        raise Invalid(f"Unknown status {status!r}; one of {', '.join(conv.STATUSES)}.")
    rows = conv.list_sessions(open_database(), acting(viewer), status=status)
    if as_json:
        print_json([session_dict(c) for c in rows])
        return
    table(
        [
            [
                c.id,
                c.status,
                c.tenant or "-",
                c.flow,
                c.user_email,
                c.supervisor or "-",
                c.updated_at.strftime("%Y-%m-%d %H:%M"),
            ]
            for c in rows
        ],
        ["ID", "STATUS", "TENANT", "FLOW", "USER", "SUPERVISOR", "UPDATED"],
    )


@sessions_app.command("show")
def sessions_show(
    session_id: str,
    viewer: Viewer = None,
    model_history: Annotated[
        bool, typer.Option("--model-history", help="Only what the model is given (user and agent messages).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """A session and its messages: the full history, or the model's."""
    from core.conversations import sessions as conv

    db = open_database()
    who = acting(viewer)
    chat = conv.get_session(db, session_id, who)
    messages = (conv.model_history if model_history else conv.full_history)(db, session_id, who)
    if as_json:
        print_json(
            {
                **session_dict(chat),
                "history": "model" if model_history else "full",
                "messages": [message_dict(m) for m in messages],
            }
        )
        return
    held = f", held by {chat.supervisor}" if chat.supervisor else ""
    typer.echo(
        f"{chat.id} {chat.title!r}: {chat.status}{held}; flow {chat.flow} of "
        f"{chat.tenant or 'the platform'}; started by {chat.user_email}"
    )
    for m in messages:
        hidden = "" if m.visible_to_model else " [not shown to the model]"
        typer.echo(f"{m.created_at:%Y-%m-%d %H:%M:%S} {m.role} ({m.author}){hidden}: {m.content}")


@sessions_app.command("take-over")
def sessions_take_over(session_id: str, supervisor: Supervisor) -> None:
    """Stop the agent: you now hold the session and may inject messages."""
    from core.conversations import sessions as conv

    chat = conv.take_over(open_database(), session_id, supervisor)
    typer.echo(f"{chat.id} supervised by {chat.supervisor}")


@sessions_app.command("inject")
def sessions_inject(
    session_id: str,
    supervisor: Supervisor,
    message: Annotated[str, typer.Option("--message", help="What the user reads (the model never does).")],
) -> None:
    """Write to the user as the supervisor holding the session."""
    from core.conversations import sessions as conv

    written = conv.inject(open_database(), session_id, supervisor, message)
    typer.echo(f"{session_id} message {written.id} injected")


@sessions_app.command("release")
def sessions_release(session_id: str, supervisor: Supervisor) -> None:
    """Give the session back to the agent."""
    from core.conversations import sessions as conv

    chat = conv.release(open_database(), session_id, supervisor)
    typer.echo(f"{chat.id} released to the agent")


@sessions_app.command("close")
def sessions_close(session_id: str, actor: Supervisor) -> None:
    """Close the session for good (its user or a supervisor)."""
    from core.conversations import sessions as conv

    chat = conv.close(open_database(), session_id, actor)
    typer.echo(f"{chat.id} closed")


__all__ = ["sessions_app", "session_dict", "message_dict"]
