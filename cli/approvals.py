"""``python -m core approvals ...``: list, show and answer approval requests.

Registered by ``cli.main``; the helpers all command modules share are in
``cli.support``. Core is imported inside each command (fast ``--help``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.support import DEFAULT_ACTOR, Actor, AsJson, open_database, parse_json, print_json, reads_only, table

approvals_app = typer.Typer(no_args_is_help=True, help="List and answer approval requests.")


@approvals_app.command("list")
@reads_only
def approvals_list(
    for_user: Annotated[str | None, typer.Option("--for", help="Only those this user may answer.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's.")] = None,
    limit: int = 100,
    as_json: AsJson = False,
    actor: Actor = DEFAULT_ACTOR,
) -> None:
    """List open approval requests, most urgent first."""
    from core.records.as_json import approval_dict
    from core.records.listing import pending_approval_rows
    from core.store.tenancy import user_tenant

    db = open_database(reading=True)
    rows = pending_approval_rows(db, for_user, workflow, limit=limit, tenant=user_tenant(db, actor))
    if as_json:
        print_json([approval_dict(a) for a in rows])
        return
    table(
        [
            [
                a.id,
                a.approval_type,
                a.title,
                ",".join(a.approvers),
                a.expires_at.strftime("%Y-%m-%d %H:%M") if a.expires_at else "-",
            ]
            for a in rows
        ],
        ["ID", "TYPE", "TITLE", "APPROVERS", "EXPIRES"],
    )


@approvals_app.command("show")
def approvals_show(approval_id: str, as_json: AsJson = False, actor: Actor = DEFAULT_ACTOR) -> None:
    """Show an approval request with its votes."""
    from core.approvals.engine import ApprovalEngine
    from core.approvals.presentation import request_view
    from core.engine import workflows as ops
    from core.store.tenancy import user_tenant

    engine = ApprovalEngine(open_database())
    row = engine.get(approval_id, tenant=user_tenant(engine.db, actor))
    responses = engine.responses(approval_id)
    approval = ops.approval_dict(row)
    votes: list[dict[str, Any]] = [
        {
            "approver": v.approver,
            "decision": v.decision,
            "channel": v.channel,
            "comment": v.comment,
            "data": v.data,
            "at": v.created_at.isoformat(),
        }
        for v in responses
    ]
    if as_json:
        print_json({**approval, "responses": votes})
        return
    typer.echo(f"{approval['title']} [{approval['type']}] {approval['status']}")
    typer.echo(f"approvers: {', '.join(approval['approvers'])} (need {approval['threshold']})")
    for line in request_view(row, responses).summary_lines():
        typer.echo(line)
    for vote in votes:
        typer.echo(
            f"  {vote['at'][:19]} {vote['approver']}: {vote['decision']} via "
            f"{vote['channel']} {vote['comment']}"
        )


@approvals_app.command("respond")
def approvals_respond(
    approval_id: str,
    decision: Annotated[str, typer.Option(help="approve, reject or modify")],
    actor: Actor,
    data: Annotated[
        str | None,
        typer.Option(
            help='Answer data as a JSON object; edit a guarded call with {"arguments": {...}}, '
            'lower a budget with {"approved_amount": N}.'
        ),
    ] = None,
    comment: str = "",
    allow_for_days: Annotated[
        float | None,
        typer.Option(
            help="Approve, and allow calls like this for N days (a standing rule; policies:manage)."
        ),
    ] = None,
    allow_when: Annotated[
        str | None,
        typer.Option(help='The rule\'s condition, e.g. "args.amount <= 200" (default: calls like this one).'),
    ] = None,
    level: Annotated[
        int | None,
        typer.Option(help="Count only if the request is still at this level (`level` of `show --json`)."),
    ] = None,
    digest: Annotated[
        str | None,
        typer.Option(help="Count only if the call is still this one (its `digest` in `show --json`)."),
    ] = None,
) -> None:
    """Answer an approval request.

    With --level and/or --digest (as read with `approvals show --json`), the answer
    counts only for the request as it was read: once an earlier level has moved it
    on or changed its call, it is refused and nothing is recorded."""
    from core.approvals.engine import ApprovalEngine
    from core.approvals.once import ANY, respond_once

    answer = parse_json(data, "--data")
    if level is None and digest is None:
        approval = ApprovalEngine(open_database()).respond_to_approval(
            approval_id,
            actor,
            decision,
            answer,
            comment,
            channel="cli",
            allow_for_days=allow_for_days,
            allow_when=allow_when,
        )
    else:
        approval = respond_once(
            open_database(),
            key=None,
            what="This answer",
            approval_id=approval_id,
            approver=actor,
            decision=decision,
            data=answer,
            comment=comment,
            channel="cli",
            level=level,
            digest=ANY if digest is None else digest,
            allow_for_days=allow_for_days,
            allow_when=allow_when,
        )
    typer.echo(f"{approval.id} {approval.status}")


@approvals_app.command("expire")
def approvals_expire(approval_id: str, actor: Actor = DEFAULT_ACTOR) -> None:
    """Apply an approval's timeout rule now."""
    from core.approvals.engine import ApprovalEngine

    approval = ApprovalEngine(open_database()).expire_approval(approval_id, actor)
    typer.echo(f"{approval.id} {approval.status}")
