"""The command line: ``python -m core ...`` (typer).

Every command that changes something takes ``--as USER``, recorded as the
actor. Listings and ``show`` take ``--json`` and then print only JSON. A
refused command exits 1 with a one-line reason on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer
from sqlalchemy.exc import SQLAlchemyError

from cli.accounts import register as register_account_state
from cli.alerts import alerts_app
from cli.audit import audit_app
from cli.execution_logs import logs_command
from cli.profiles import agents_app
from cli.sessions import sessions_app
from cli.support import DEFAULT_ACTOR, AsJson, open_database, parse_json, print_json, table
from cli.teams import teams_app
from cli.tenants import tenants_app
from core.approvals.engine import ApprovalEngine
from core.base import errors
from core.base.errors import CountersignError, DefinitionError, Invalid
from core.definitions.workflow import load_definition_file, unanswerable_approvals, unregistered_tools
from core.engine import workflows as ops
from core.engine.checkpoints import rollback
from core.engine.tools import default_registry
from core.store.db import get_database, translate
from core.store.tenancy import user_tenant

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Countersign: human approvals for AI agent workflows.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
workflow_app = typer.Typer(no_args_is_help=True, help="Start and steer workflows.")
approvals_app = typer.Typer(no_args_is_help=True, help="List and answer approval requests.")
checkpoints_app = typer.Typer(no_args_is_help=True, help="Workflow checkpoints.")
users_app = typer.Typer(no_args_is_help=True, help="Local accounts for the dashboard.")
app.add_typer(db_app, name="db")
app.add_typer(workflow_app, name="workflow")
app.add_typer(approvals_app, name="approvals")
app.add_typer(checkpoints_app, name="checkpoints")
app.add_typer(users_app, name="users")

Actor = Annotated[str, typer.Option("--as", help="Who is acting (recorded in the audit trail).")]
RequiredActor = Annotated[str, typer.Option("--as", help="Who is acting (recorded in the audit trail).")]
# -- db -------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations up to the newest."""
    db = get_database()
    db.upgrade()
    from core.store.migrate import current_revision

    typer.echo(f"database at revision {current_revision(db)}")


# -- workflow -------------------------------------------------------------------


@workflow_app.command("start")
def workflow_start(
    file: Annotated[Path, typer.Argument(help="Workflow definition, JSON or YAML.")],
    input: Annotated[str | None, typer.Option("--input", help="Input data as a JSON object.")] = None,
    name: Annotated[str | None, typer.Option(help="Name (default: the definition's).")] = None,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Start a workflow; prints its id."""
    definition = load_definition_file(file)
    input_data = parse_json(input, "--input")
    db = open_database()  # loads the tool modules, as a runner does
    workflow = ops.create_workflow(db, definition, name=name, input_data=input_data,
                                   created_by=actor, tools=default_registry)
    typer.echo(workflow.id)


@workflow_app.command("validate")
def workflow_validate(
    file: Annotated[Path, typer.Argument(help="Workflow definition, JSON or YAML.")],
    actor: Annotated[str | None, typer.Option("--as", help="Who would start it (checks that "
                                              "someone else can approve).")] = None,
) -> None:
    """Check a definition without starting it; unknown tools are warnings here."""
    definition = load_definition_file(file)
    if actor and (problems := unanswerable_approvals(definition, actor)):
        raise DefinitionError(problems)
    from core.runtime import load_tools

    for warning in unregistered_tools(definition, load_tools()):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"valid: {len(definition.steps)} steps")


@workflow_app.command("list")
def workflow_list(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    search: Annotated[str | None, typer.Option(help="Text in the name or id.")] = None,
    limit: int = 50,
    offset: int = 0,
    as_json: AsJson = False,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """List workflows, newest first (a tenant's user --as sees only that tenant's)."""
    db = open_database()
    page = ops.list_workflows(db, status=status, search=search, limit=limit, offset=offset,
                              tenant=user_tenant(db, actor))
    if as_json:
        print_json({"total": page.total, "workflows": [ops.workflow_dict(w) for w in page.rows]})
        return
    table([[w.id, w.status, w.name, w.created_at.strftime("%Y-%m-%d %H:%M")] for w in page.rows],
           ["ID", "STATUS", "NAME", "CREATED"])
    typer.echo(f"{len(page.rows)} of {page.total}")


@workflow_app.command("show")
def workflow_show(
    workflow_id: str, as_json: AsJson = False, actor: Actor = DEFAULT_ACTOR,
    at: Annotated[int | None, typer.Option(
        "--at", help="Print the whole state just before and after this event (its #).")] = None,
) -> None:
    """Show a workflow with its events (or its state at one event, with --at)."""
    from core.records import history

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
    events = [{**ops.event_dict(e), "before": r.before, "after": r.after}
              for e, r in zip(trail, history.readable_events(db, trail), strict=True)]
    if as_json:
        print_json({**status, "events": events})
        return
    typer.echo(f"{status['name']} ({status['id']})")
    typer.echo(f"status: {status['status']}   step: {status['current_step']}   "
               f"progress: {status['progress']['completed']}/{status['progress']['total']}")
    if status["error"]:
        typer.echo(f"error: {status['error']}")
    for approval in status["pending_approvals"]:
        typer.echo(f"waiting for: {approval['title']} ({approval['id']}) from "
                   f"{', '.join(approval['approvers'])}")
    table([[e["id"], e["created_at"][:19], e["type"], e["actor"], e["step"] or ""] for e in events],
           ["#", "WHEN", "EVENT", "ACTOR", "STEP"])


def _steer(action: str, workflow_id: str, actor: str, reason: str = "") -> None:
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
    actor: RequiredActor,
    checkpoint: Annotated[str | None, typer.Option(help="Checkpoint name (default: latest).")] = None,
    as_json: AsJson = False,
) -> None:
    """Roll a workflow back to a checkpoint; it is left paused there."""
    result = rollback(open_database(), default_registry, workflow_id, checkpoint_name=checkpoint,
                      reason=reason, actor=actor)
    if as_json:
        print_json(result.__dict__)
        return
    typer.echo(f"rolled back {workflow_id} to {result.checkpoint}; workflow paused")
    for comp in result.compensations:
        typer.echo(f"  {comp['step']}: " + (f"compensated by {comp['tool']}" if comp["tool"]
                                             else "undone (no compensation)"))
    for approval_id in result.cancelled_approvals:
        typer.echo(f"  cancelled approval {approval_id}")


# -- approvals --------------------------------------------------------------------


@approvals_app.command("list")
def approvals_list(
    for_user: Annotated[str | None, typer.Option("--for", help="Only those this user may answer.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's.")] = None,
    limit: int = 100,
    as_json: AsJson = False,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """List open approval requests, most urgent first."""
    db = open_database()
    rows = ApprovalEngine(db).list_pending_approvals(for_user, workflow, limit=limit,
                                                     tenant=user_tenant(db, actor))
    if as_json:
        print_json([ops.approval_dict(a) for a in rows])
        return
    table([[a.id, a.approval_type, a.title, ",".join(a.approvers),
             a.expires_at.strftime("%Y-%m-%d %H:%M") if a.expires_at else "-"] for a in rows],
           ["ID", "TYPE", "TITLE", "APPROVERS", "EXPIRES"])


@approvals_app.command("show")
def approvals_show(approval_id: str, as_json: AsJson = False, actor: Actor = DEFAULT_ACTOR) -> None:
    """Show an approval request with its votes."""
    from core.approvals.presentation import request_view

    engine = ApprovalEngine(open_database())
    row = engine.get(approval_id, tenant=user_tenant(engine.db, actor))
    responses = engine.responses(approval_id)
    approval = ops.approval_dict(row)
    votes: list[dict[str, Any]] = [{"approver": v.approver, "decision": v.decision, "channel": v.channel,
              "comment": v.comment, "data": v.data, "at": v.created_at.isoformat()}
             for v in responses]
    if as_json:
        print_json({**approval, "responses": votes})
        return
    typer.echo(f"{approval['title']} [{approval['type']}] {approval['status']}")
    typer.echo(f"approvers: {', '.join(approval['approvers'])} (need {approval['threshold']})")
    for line in request_view(row, responses).summary_lines():
        typer.echo(line)
    for vote in votes:
        typer.echo(f"  {vote['at'][:19]} {vote['approver']}: {vote['decision']} via "
                   f"{vote['channel']} {vote['comment']}")


@approvals_app.command("respond")
def approvals_respond(
    approval_id: str,
    decision: Annotated[str, typer.Option(help="approve, reject or modify")],
    actor: RequiredActor,
    data: Annotated[str | None, typer.Option(
        help="Answer data as a JSON object; edit a guarded call with {\"arguments\": {...}}, "
             "lower a budget with {\"approved_amount\": N}.")] = None,
    comment: str = "",
) -> None:
    """Answer an approval request."""
    approval = ApprovalEngine(open_database()).respond_to_approval(
        approval_id, actor, decision, parse_json(data, "--data"), comment, channel="cli"
    )
    typer.echo(f"{approval.id} {approval.status}")


@approvals_app.command("expire")
def approvals_expire(approval_id: str, actor: Actor = DEFAULT_ACTOR) -> None:
    """Apply an approval's timeout rule now."""
    approval = ApprovalEngine(open_database()).expire_approval(approval_id, actor)
    typer.echo(f"{approval.id} {approval.status}")


# -- checkpoints ------------------------------------------------------------------


@checkpoints_app.command("list")
def checkpoints_list(workflow_id: str, as_json: AsJson = False, actor: Actor = DEFAULT_ACTOR) -> None:
    """List a workflow's checkpoints."""
    db = open_database()
    rows = [ops.checkpoint_dict(c) for c in ops.checkpoints_of(db, workflow_id,
                                                                tenant=user_tenant(db, actor))]
    if as_json:
        print_json(rows)
        return
    table([[c["id"], c["name"], c["step_index"], c["created_by"], c["created_at"][:19],
             "superseded" if c["superseded"] else ""] for c in rows],
           ["ID", "NAME", "STEP", "BY", "WHEN", ""])


@checkpoints_app.command("create")
def checkpoints_create(workflow_id: str, name: str, description: str = "",
                       actor: Actor = DEFAULT_ACTOR) -> None:
    """Take a checkpoint of a workflow now."""
    checkpoint = ops.create_checkpoint(open_database(), workflow_id, name, actor, description=description)
    typer.echo(f"checkpoint {checkpoint.id} {checkpoint.name}")


# -- users --------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    email: str,
    role: Annotated[str, typer.Option(
        help="admin, approver, viewer or service (agents and systems that start workflows)")
    ] = "approver",
    password: Annotated[str | None, typer.Option(help="Password (prompted if omitted).")] = None,
    group: Annotated[list[str] | None, typer.Option(help="Group membership (repeatable).")] = None,
    tenant: Annotated[str | None, typer.Option(help="The tenant the account belongs to.")] = None,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Create or update a local account (users:manage)."""
    from core.identity.users import add_user

    db = open_database()
    if tenant is not None:
        from core.tenants.registry import get_tenant

        get_tenant(db, tenant)  # an unknown tenant is refused before anything is written

    if password is None and role != "service":
        if not sys.stdin.isatty():
            raise Invalid("Give --password, or run in a terminal to be asked.")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = add_user(db, email, role=role, password=password, groups=group, tenant=tenant,
                    actor=actor)
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
        print_json([{"email": u.email, "role": u.role, "groups": u.groups, "tenant": u.tenant,
                     "disabled_at": u.disabled_at} for u in rows])
        return
    table([[u.email, u.role, ",".join(u.groups), u.tenant or "-",
            "disabled" if u.disabled_at else "active"] for u in rows],
          ["EMAIL", "ROLE", "GROUPS", "TENANT", "STATE"])


register_account_state(users_app)  # users disable / enable (cli/accounts.py)


# -- runner and demo ------------------------------------------------------------------


@app.command("runner")
def runner(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Return once nothing is runnable.")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Worker threads.")] = 1,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Serve Prometheus metrics on this port.")] = None,
    metrics_host: Annotated[str, typer.Option(
        "--metrics-host", help="Address for --metrics-port.")] = "127.0.0.1",
) -> None:
    """Run workflows (forever, or until nothing is runnable)."""
    from core.engine.runner import wait_for_database
    from core.ops.production import require_production_secrets
    from core.runtime import build_runner

    require_production_secrets("The runner")
    # A long-running runner waits for a database that does not answer yet; a
    # batch run (--until-idle) fails at once instead.
    db = open_database() if until_idle else wait_for_database(open_database)
    worker = build_runner(db, concurrency=concurrency)
    if metrics_port is not None:
        from core.ops.metrics import serve_runner_metrics

        serve_runner_metrics(db, metrics_port, metrics_host)
        typer.echo(f"metrics on http://{metrics_host}:{metrics_port}/metrics", err=True)
    if until_idle:
        steps = worker.run_until_idle()
        typer.echo(f"idle after {steps} steps")
        return
    import signal

    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    typer.echo(f"runner {worker.runner_id} started", err=True)
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        worker.stop()


@app.command("demo")
def demo() -> None:
    """Load the four demo scenarios and their users."""
    from core.demo.scenarios import DEMO_PASSWORD, load_demo

    for workflow in load_demo(open_database()):
        typer.echo(f"{workflow.id} {workflow.name}")
    typer.echo(f"demo users' password: {DEMO_PASSWORD}", err=True)


# -- gateway: serve, API tokens, Slack Socket Mode ------------------------------------

tokens_app = typer.Typer(no_args_is_help=True, help="API tokens for the REST gateway.")
app.add_typer(tokens_app, name="tokens")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP gateway (REST API, Slack, email pages, webhooks, /metrics, /approve)."""
    import uvicorn

    from gateway.app import create_app

    # create_app() opens the configured database, migrates it and loads tools.
    # log_config=None: uvicorn's records go through core.base.logging's handler.
    uvicorn.run(create_app(), host=host, port=port, log_level="info", log_config=None)


@tokens_app.command("create")
def tokens_create(
    for_user: Annotated[str, typer.Option("--user", "--for", help="The account the token acts as.")],
    name: Annotated[str, typer.Option(help="What or who uses the token.")] = "api",
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="An action the token may do, e.g. workflows:start (repeatable; default: "
        "everything the user's role allows, never more).")] = None,
    expires: Annotated[str | None, typer.Option(
        "--expires", help="Lifetime: 30d, 12h, 90m, 2w (default: until revoked).")] = None,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Make an API token; it is printed once and only its hash is stored."""
    from core.identity.api_tokens import create_token, parse_lifetime

    lifetime = parse_lifetime(expires) if expires else None
    row, token = create_token(open_database(), for_user, name, scopes=scope, expires_in=lifetime,
                              actor=actor)
    typer.echo(token)
    until = f", expires {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else ""
    typer.echo(f"token {row.id} {row.name!r} for {row.user_email}, scopes "
               f"{' '.join(row.scopes or [])}{until}; store it now, it is not shown again",
               err=True)


@tokens_app.command("list")
def tokens_list(
    for_user: Annotated[str | None, typer.Option("--user", "--for", help="Only this user's.")] = None,
    as_json: AsJson = False,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """List API tokens with their scopes and expiry (never the tokens themselves)."""
    from core.identity.api_tokens import list_tokens, token_dict

    db = open_database()
    rows = [token_dict(t) for t in list_tokens(db, for_user, tenant=user_tenant(db, actor))]
    if as_json:
        print_json(rows)
        return
    table([[r["id"], r["name"], r["user"], " ".join(r["scopes"]), (r["expires_at"] or "-")[:16],
             (r["last_used_at"] or "-")[:19], r["state"]] for r in rows],
           ["ID", "NAME", "USER", "SCOPES", "EXPIRES", "LAST USED", "STATE"])


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (tokens list).")],
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Revoke an API token at once."""
    from core.identity.api_tokens import revoke_token

    row = revoke_token(open_database(), token_id, actor)
    typer.echo(f"token {row.id} {row.name!r} revoked")


@app.command("slack-socket")
def slack_socket() -> None:
    """Answer Slack buttons and /approvals over Socket Mode (no public URL needed)."""
    from gateway.slack import run_socket_mode

    typer.echo("connecting to Slack over Socket Mode", err=True)
    try:
        run_socket_mode(open_database())
    except KeyboardInterrupt:
        pass


# -- operations: doctor, export, import (core/ops/doctor.py, core/ops/backup.py) --------------


@app.command("doctor")
def doctor(as_json: AsJson = False) -> None:
    """Check settings, database, migrations, channels, runners; exit 1 on any FAIL."""
    from core.ops.doctor import as_dicts, healthy, run_checks

    checks = run_checks()
    if as_json:
        print_json({"healthy": healthy(checks), "checks": as_dicts(checks)})
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            typer.echo(f"{c.status:<4}  {c.name:<{width}}  {c.message}")
    if not healthy(checks):
        raise SystemExit(1)


@app.command("export")
def export(file: Annotated[Path, typer.Argument(help="Backup file to write (JSON Lines).")],
           actor: Actor = DEFAULT_ACTOR) -> None:
    """Write every workflow, approval, event, checkpoint, user... to a backup file."""
    from core.ops.backup import export_database

    # Written beside the target and renamed at the end: a failed export leaves no half file.
    partial = file.with_name(file.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            result = export_database(get_database(), out, actor=actor)
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)
    typer.echo(f"exported {result.total} rows at revision {result.revision} to {file}")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Backup file made by export.")],
    merge: Annotated[bool, typer.Option("--merge", help="Into a non-empty database: skip rows "
                                        "whose id exists.")] = False,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """Load a backup file into this database, all of it or nothing."""
    from core.ops.backup import import_database

    db = get_database()
    db.upgrade()
    with file.open(encoding="utf-8") as source:
        result = import_database(db, source, merge=merge, actor=actor)
    skipped = sum(result.skipped.values())
    typer.echo(f"imported {sum(result.inserted.values())} rows"
               + (f", skipped {skipped} already present" if skipped else ""))


# -- command groups in their own modules ----------------------------------------------

app.add_typer(agents_app, name="agents")
agents_app.add_typer(teams_app, name="teams")
app.add_typer(alerts_app, name="alerts")
app.command("logs")(logs_command)
app.add_typer(tenants_app, name="tenants")
app.add_typer(sessions_app, name="sessions")
app.add_typer(audit_app, name="audit")


# Each kind of core error (core.base.errors.KINDS) exits with its own code, so a
# script can tell "no such workflow" from "not allowed" from "database down".
EXIT_CODE_BY_KIND: dict[type[CountersignError], int] = {
    errors.Invalid: 2,
    errors.NotFound: 3,
    errors.Conflict: 4,
    errors.Forbidden: 5,
    errors.Unauthenticated: 5,
    errors.Unavailable: 6,
}


def exit_code_for(error: CountersignError) -> int:
    kind = errors.kind_of(error)
    return EXIT_CODE_BY_KIND[kind] if kind is not None else 1


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    from core.base.logging import configure_logging

    configure_logging()
    try:
        app(args=argv, standalone_mode=False)
    except CountersignError as exc:
        _fail(str(exc).replace("\n", " "), exit_code_for(exc))
    except SQLAlchemyError as exc:
        _fail(str(translate(exc)).splitlines()[0])
    except (click.exceptions.Abort, typer.Abort):
        _fail("aborted")
    except click.exceptions.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except typer.TyperException as exc:
        # typer >= 0.29 vendors click, so its usage errors are not click's
        # classes; without this they left as tracebacks.
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            raise SystemExit(0) from None
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _fail(f"{message} (see --help)".replace("\n", " "), getattr(exc, "exit_code", 2))
    except (OSError, ValueError) as exc:
        _fail(str(exc))
