"""``python -m core rules ...`` (standing rules) and ``python -m core ooo ...`` (out of office).

Registered by ``cli.main``; the use cases (and their permission checks) are
``core.approvals.standing_rules`` and ``core.approvals.delegation``.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

import typer

from cli.support import AsJson, OptionalActor, acting, open_database, print_json, table
from core.base.errors import InvalidDelegation

rules_app = typer.Typer(
    no_args_is_help=True, help="Standing rules: calls released without asking (docs/policy.md)."
)
ooo_app = typer.Typer(
    no_args_is_help=True, help="Out of office: requests to a person away go to their delegate."
)

Days = Annotated[float, typer.Option(help="How many days the rule lasts (at most 90).")]


def _print_rule(rule: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(rule)
    else:
        typer.echo(
            f"rule {rule['id']} {rule['state']}: {rule['tool']} when {rule['condition']} "
            f"(until {rule['expires_at'][:16]})"
        )


@rules_app.command("list")
def rules_list(
    ended: Annotated[bool, typer.Option("--all", help="Also revoked and expired rules.")] = False,
    as_json: AsJson = False,
    actor: OptionalActor = None,
) -> None:
    """The rules you see (your tenant's; a platform user every one), newest first."""
    from core.approvals.standing_rules import list_rules

    rows = list_rules(open_database(), acting(actor), include_ended=ended)
    if as_json:
        print_json(rows)
        return
    table(
        [
            [
                r["id"],
                r["tool"],
                r["condition"],
                r["workflow_name"] or "(any)",
                r["tenant"] or "(platform)",
                r["state"],
                r["expires_at"][:16],
                r["uses"],
                r["created_by"],
            ]
            for r in rows
        ],
        ["ID", "TOOL", "CONDITION", "WORKFLOW", "TENANT", "STATE", "EXPIRES", "USES", "BY"],
    )


@rules_app.command("create")
def rules_create(
    tool: Annotated[str, typer.Option(help="The tool whose calls the rule releases.")],
    condition: Annotated[str, typer.Option("--when", help='e.g. "args.amount <= 200".')],
    days: Days = 7,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow name.")] = None,
    tenant: Annotated[
        str | None,
        typer.Option(help="The tenant's slug (a platform user's choice; default: your own tenant)."),
    ] = None,
    note: str = "",
    as_json: AsJson = False,
    actor: OptionalActor = None,
) -> None:
    """Create a standing rule (policies:manage)."""
    from core.approvals.standing_rules import create_rule

    scope: dict[str, Any] = {"tenant": tenant} if tenant is not None else {}
    _print_rule(
        create_rule(
            open_database(),
            acting(actor),
            tool=tool,
            condition=condition,
            days=days,
            workflow_name=workflow,
            note=note,
            **scope,
        ),
        as_json,
    )


@rules_app.command("edit")
def rules_edit(
    rule_id: int,
    condition: Annotated[str | None, typer.Option("--when", help="A new condition.")] = None,
    days: Annotated[float | None, typer.Option(help="A new expiry, in days from now.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow name ('' for any).")] = None,
    as_json: AsJson = False,
    actor: OptionalActor = None,
) -> None:
    """Change a live rule's condition, expiry or workflow (policies:manage)."""
    from core.approvals.standing_rules import update_rule

    _print_rule(
        update_rule(
            open_database(), acting(actor), rule_id, condition=condition, days=days, workflow_name=workflow
        ),
        as_json,
    )


@rules_app.command("revoke")
def rules_revoke(rule_id: int, as_json: AsJson = False, actor: OptionalActor = None) -> None:
    """End a rule now: later calls are asked about again (policies:manage)."""
    from core.approvals.standing_rules import revoke_rule

    _print_rule(revoke_rule(open_database(), acting(actor), rule_id), as_json)


def _until(value: str) -> datetime:
    """``2026-12-24`` (the end of that day, UTC) or an ISO date-time with its zone."""
    try:
        if len(value.strip()) == 10:
            return datetime.combine(datetime.fromisoformat(value.strip()).date(), time(23, 59), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidDelegation(
            [f"until: {value!r} is not a date (YYYY-MM-DD) or an ISO date-time"]
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@ooo_app.command("set")
def ooo_set(
    until: Annotated[str, typer.Option(help="YYYY-MM-DD (the end of that day, UTC) or ISO.")],
    delegate: Annotated[str, typer.Option(help="Who answers for you meanwhile.")],
    person: Annotated[
        str | None, typer.Option(help="Someone else's (users:manage); default: the --as person.")
    ] = None,
    as_json: AsJson = False,
    actor: OptionalActor = None,
) -> None:
    """Out of office until a date, delegate to a person."""
    from core.approvals.delegation import set_out_of_office
    from core.identity.addresses import check_address

    # Through the one check every address goes through (core.identity.addresses).
    delegate = check_address(delegate, "--delegate")
    person = check_address(person, "--person") if person is not None else None
    setting = set_out_of_office(
        open_database(), acting(actor), until=_until(until), delegate=delegate, person=person
    )
    if as_json:
        print_json(setting)
    else:
        typer.echo(
            f"{setting['person']} is out of office until {setting['until'][:16]}; "
            f"requests go to {setting['delegate']}"
        )


@ooo_app.command("clear")
def ooo_clear(person: Annotated[str | None, typer.Option()] = None, actor: OptionalActor = None) -> None:
    """Back in the office: requests reach the person again."""
    from core.approvals.delegation import clear_out_of_office

    who = person or acting(actor)
    cleared = clear_out_of_office(open_database(), acting(actor), person)
    typer.echo(f"{who} is back" if cleared else f"{who} was not out of office")


@ooo_app.command("list")
def ooo_list(as_json: AsJson = False, actor: OptionalActor = None) -> None:
    """Who is out of office now, and their delegates."""
    from core.approvals.delegation import list_out_of_office

    rows = list_out_of_office(open_database(), acting(actor))
    if as_json:
        print_json(rows)
        return
    table(
        [[r["person"], r["delegate"], r["until"][:16], r["set_by"]] for r in rows],
        ["PERSON", "DELEGATE", "UNTIL", "SET BY"],
    )


__all__ = ["ooo_app", "rules_app"]
