"""``python -m core logs``: read and export execution logs from the command line.

Registered by ``cli.main``. The command line is the platform: it sees every
tenant's rows unless ``--tenant`` narrows them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from cli.support import OptionalActor, acting, open_database, table
from core.base.errors import InvalidLogFilter

Since = Annotated[
    str | None,
    typer.Option(
        help="Only rows newer than this: a duration back from now (90s, 15m, 24h, 7d) or an ISO time."
    ),
]
Until = Annotated[str | None, typer.Option(help="Only rows older than this (same forms as --since).")]
Kinds = Annotated[
    list[str] | None,
    typer.Option(
        "--kind", help="agent_step, tool_call, model_error, agent_error or final_answer (repeatable)."
    ),
]
Levels = Annotated[
    list[str] | None, typer.Option("--level", help="debug, info, warning or error (repeatable).")
]


def _when(value: str | None, what: str) -> datetime | None:
    from core.base.durations import parse_duration

    if not value:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidLogFilter(f"{what}: {value!r} is neither a duration (24h) nor an ISO time.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def logs_command(
    since: Since = None,
    until: Until = None,
    kind: Kinds = None,
    level: Levels = None,
    workflow: Annotated[str | None, typer.Option(help="Workflow id (or its first characters).")] = None,
    session: Annotated[str | None, typer.Option(help="Chat session id (or its first characters).")] = None,
    agent: Annotated[str | None, typer.Option(help="Text in the agent's name.")] = None,
    tool: Annotated[str | None, typer.Option(help="Text in the tool's name.")] = None,
    contains: Annotated[str | None, typer.Option(help="Text in the message.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's rows.")] = None,
    limit: Annotated[int, typer.Option(help="Rows per page.")] = 50,
    page: Annotated[int, typer.Option(help="Which page, newest first.")] = 1,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write every matching row (oldest first) to this CSV file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON.")] = False,
    actor: OptionalActor = None,
) -> None:
    """Execution logs: agent steps, tool calls and model errors, newest first (audit:read).

    A tenant's user (``--as``) sees only their tenant's rows, as on the dashboard."""
    from core.agents import execution_logs
    from core.store.tenancy import user_tenant

    filters = execution_logs.LogFilters(
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        kinds=tuple(kind or ()),
        levels=tuple(level or ()),
        workflow_id=workflow,
        session_id=session,
        agent=agent,
        tool_name=tool,
        text=contains,
        tenant=tenant,
    )
    filters.check()
    db = open_database()
    viewer = user_tenant(db, acting(actor))
    if csv is not None:
        rows = execution_logs.export_rows(db, filters, viewer, actor=acting(actor))
        csv.write_text(execution_logs.to_csv(rows), encoding="utf-8")
        typer.echo(f"wrote {len(rows)} rows to {csv}")
        return
    result = execution_logs.query(db, filters, viewer, page=page, page_size=limit, actor=acting(actor))
    if as_json:
        typer.echo(
            json.dumps(
                {"total": result.total, "page": result.page, "rows": [asdict(r) for r in result.rows]},
                indent=2,
                default=str,
            )
        )
        return
    table(
        [
            [
                r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.kind,
                r.level,
                (r.workflow_id or r.session_id or "")[:8],
                r.step_name or "",
                r.tool_name or "",
                r.message.replace("\n", " ")[:80],
            ]
            for r in result.rows
        ],
        ["TIME", "KIND", "LEVEL", "SOURCE", "STEP", "TOOL", "MESSAGE"],
    )
    typer.echo(f"{len(result.rows)} of {result.total} (page {result.page} of {result.pages})")
