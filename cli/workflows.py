"""``python -m core workflow ...``: start, inspect and steer workflows.

Registered by ``cli.main``; the helpers all command modules share are in
``cli.support``. Core is imported inside each command (fast ``--help``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.support import (
    DEFAULT_ACTOR,
    Actor,
    AsJson,
    checked_actor,
    open_database,
    parse_json,
    print_json,
    reads_only,
    table,
)

workflow_app = typer.Typer(no_args_is_help=True, help="Start and steer workflows.")


@workflow_app.command("start")
def workflow_start(
    file: Annotated[Path, typer.Argument(help="Workflow definition, JSON or YAML.")],
    input: Annotated[str | None, typer.Option("--input", help="Input data as a JSON object.")] = None,
    name: Annotated[str | None, typer.Option(help="Name (default: the definition's).")] = None,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Start a workflow; prints its id."""
    from core.definitions.definition_text import load_definition_file
    from core.engine import workflows as ops
    from core.engine.tools import default_registry

    input_data = parse_json(input, "--input")
    db = open_database()  # loads the tool modules, as a runner does
    # Unknown tools are refused with every other problem of the definition, in one message.
    definition = load_definition_file(file, tools=default_registry)
    workflow = ops.create_workflow(
        db, definition, name=name, input_data=input_data, created_by=actor, tools=default_registry
    )
    typer.echo(workflow.id)


@workflow_app.command("validate")
def workflow_validate(
    file: Annotated[Path, typer.Argument(help="Workflow definition, JSON or YAML.")],
    actor: Annotated[
        str | None,
        typer.Option(
            "--as", help="Who would start it (checks that someone else can approve).", callback=checked_actor
        ),
    ] = None,
) -> None:
    """Check a definition without starting it; unknown tools are warnings here (this
    process may not load the runners' tool modules), named among the problems of a
    definition that is refused anyway."""
    from core.base.errors import DefinitionError
    from core.definitions.definition_text import read_definition_file
    from core.definitions.workflow import parse_definition, unanswerable_approvals, unregistered_tools
    from core.runtime import load_tools

    data = read_definition_file(file)
    unknown = unregistered_tools(data, load_tools())
    try:
        definition = parse_definition(data)
    except DefinitionError as exc:
        raise DefinitionError(list(dict.fromkeys([*exc.problems, *unknown]))) from None
    if actor and (problems := unanswerable_approvals(definition, actor)):
        raise DefinitionError([*problems, *unknown])
    for warning in unknown:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"valid: {len(definition.steps)} steps")


@workflow_app.command("list")
@reads_only
def workflow_list(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    search: Annotated[str | None, typer.Option(help="Text in the name or id.")] = None,
    limit: int = 50,
    offset: int = 0,
    as_json: AsJson = False,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """List workflows, newest first (a tenant's user --as sees only that tenant's)."""
    from core.records.as_json import workflow_dict
    from core.records.listing import workflow_rows
    from core.store.tenancy import user_tenant

    db = open_database(reading=True)
    page = workflow_rows(
        db, status=status, search=search, limit=limit, offset=offset, tenant=user_tenant(db, actor)
    )
    if as_json:
        print_json({"total": page.total, "workflows": [workflow_dict(w) for w in page.rows]})
        return
    table(
        [[w.id, w.status, w.name, w.created_at.strftime("%Y-%m-%d %H:%M")] for w in page.rows],
        ["ID", "STATUS", "NAME", "CREATED"],
    )
    typer.echo(f"{len(page.rows)} of {page.total}")


@workflow_app.command("show")
def workflow_show(
    workflow_id: str,
    as_json: AsJson = False,
    actor: Actor = DEFAULT_ACTOR,
    at: Annotated[
        int | None,
        typer.Option("--at", help="Print the whole state just before and after this event (its #)."),
    ] = None,
) -> None:
    """Show a workflow with its events (or its state at one event, with --at)."""
    from core.engine import workflows as ops
    from core.records import history
    from core.store.tenancy import user_tenant

    db = open_database()
    tenant = user_tenant(db, actor)
    if at is not None:
        try:
            before, after = history.states_at(db, workflow_id, at, tenant=tenant)
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0]), param_hint="--at") from None
        print_json({"event": at, "before": before, "after": after})
        return
    status = ops.workflow_status(db, workflow_id, tenant=tenant)
    trail = ops.events_of(db, workflow_id)  # with the outputs the step events refer to
    events = [
        {**ops.event_dict(e), "before": r.before, "after": r.after}
        for e, r in zip(trail, history.readable_events(db, trail), strict=True)
    ]
    if as_json:
        print_json({**status, "events": events})
        return
    typer.echo(f"{status['name']} ({status['id']})")
    typer.echo(
        f"status: {status['status']}   step: {status['current_step']}   "
        f"progress: {status['progress']['completed']}/{status['progress']['total']}"
    )
    if status["error"]:
        typer.echo(f"error: {status['error']}")
    for approval in status["pending_approvals"]:
        typer.echo(
            f"waiting for: {approval['title']} ({approval['id']}) from {', '.join(approval['approvers'])}"
        )
    table(
        [[e["id"], e["created_at"][:19], e["type"], e["actor"], e["step"] or ""] for e in events],
        ["#", "WHEN", "EVENT", "ACTOR", "STEP"],
    )


def _steer(action: str, workflow_id: str, actor: str, reason: str = "") -> None:
    from core.engine import workflows as ops

    db = open_database()
    if action == "pause":
        workflow = ops.pause_workflow(db, workflow_id, actor, reason)
    elif action == "resume":
        workflow = ops.resume_workflow(db, workflow_id, actor)
    elif action == "cancel":
        workflow = ops.cancel_workflow(db, workflow_id, actor, reason)
    else:
        workflow = ops.retry_workflow(db, workflow_id, actor)
    typer.echo(f"{workflow.id} {workflow.status}")


@workflow_app.command("pause")
def workflow_pause(workflow_id: str, reason: str = "", actor: Actor = DEFAULT_ACTOR) -> None:
    """Pause a workflow (a running step finishes first)."""
    _steer("pause", workflow_id, actor, reason)


@workflow_app.command("resume")
def workflow_resume(workflow_id: str, actor: Actor = DEFAULT_ACTOR) -> None:
    """Resume a paused workflow."""
    _steer("resume", workflow_id, actor)


@workflow_app.command("cancel")
def workflow_cancel(workflow_id: str, reason: str = "", actor: Actor = DEFAULT_ACTOR) -> None:
    """Cancel a workflow and its open approvals."""
    _steer("cancel", workflow_id, actor, reason)


@workflow_app.command("retry")
def workflow_retry(workflow_id: str, actor: Actor = DEFAULT_ACTOR) -> None:
    """Run a failed workflow again from its failed step."""
    _steer("retry", workflow_id, actor)


@workflow_app.command("rollback")
def workflow_rollback(
    workflow_id: str,
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    actor: Actor,
    checkpoint: Annotated[str | None, typer.Option(help="Checkpoint name (default: latest).")] = None,
    as_json: AsJson = False,
) -> None:
    """Roll a workflow back to a checkpoint; it is left paused there."""
    from core.engine.checkpoints import rollback
    from core.engine.tools import default_registry

    result = rollback(
        open_database(), default_registry, workflow_id, checkpoint_name=checkpoint, reason=reason, actor=actor
    )
    if as_json:
        print_json(result.__dict__)
        return
    typer.echo(f"rolled back {workflow_id} to {result.checkpoint}; workflow paused")
    for comp in result.compensations:
        typer.echo(
            f"  {comp['step']}: "
            + (f"compensated by {comp['tool']}" if comp["tool"] else "undone (no compensation)")
        )
    for approval_id in result.cancelled_approvals:
        typer.echo(f"  cancelled approval {approval_id}")
