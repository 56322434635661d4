"""``python -m core serve`` and ``slack-socket``: the long-running front doors.

``cli.main`` registers both as top-level commands. Core, the gateway and
uvicorn are imported inside each command (fast ``--help``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.support import open_database


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP gateway (REST API, Slack, email pages, webhooks, /metrics, /approve)."""
    import uvicorn

    from gateway.app import create_app

    # create_app() opens the configured database, migrates it and loads tools.
    # log_config=None: uvicorn's records go through core.base.logging's handler.
    uvicorn.run(create_app(), host=host, port=port, log_level="info", log_config=None)


def slack_socket_command() -> None:
    """Answer Slack buttons and /approvals over Socket Mode (no public URL needed)."""
    from gateway.slack import run_socket_mode

    typer.echo("connecting to Slack over Socket Mode", err=True)
    try:
        run_socket_mode(open_database())
    except KeyboardInterrupt:
        pass
