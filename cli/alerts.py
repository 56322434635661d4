"""``python -m core alerts ...``: list, acknowledge and evaluate alerts.

Registered by ``cli.main``; the helpers all command modules share are in
``cli.support``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.support import AsJson, OptionalActor, acting, open_database, print_json, table

alerts_app = typer.Typer(no_args_is_help=True, help="Alerts the runners raise (see core/ops/alerts.py).")


def _alert_dict(alert: Any) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "severity": alert.severity,
        "message": alert.message,
        "data": alert.data,
        "raised_at": alert.raised_at,
        "resolved_at": alert.resolved_at,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": alert.acknowledged_at,
    }


@alerts_app.command("list")
def alerts_list(
    resolved: Annotated[bool, typer.Option(help="Also resolved alerts of the last 7 days.")] = False,
    as_json: AsJson = False,
) -> None:
    """Open alerts, most severe first (and recently resolved ones with --resolved)."""
    from core.ops import alerts

    db = open_database()
    rows = alerts.open_alerts(db) + (alerts.resolved_alerts(db) if resolved else [])
    if as_json:
        print_json([_alert_dict(a) for a in rows])
        return
    table(
        [
            [
                a.id,
                a.severity,
                a.rule,
                "resolved" if a.resolved_at else ("acknowledged" if a.acknowledged_at else "open"),
                a.raised_at.strftime("%Y-%m-%d %H:%M"),
                a.message[:80],
            ]
            for a in rows
        ],
        ["ID", "SEVERITY", "RULE", "STATE", "RAISED", "MESSAGE"],
    )
    typer.echo(f"{sum(a.resolved_at is None for a in rows)} open")


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id (see `alerts list`).")],
    actor: OptionalActor = None,
) -> None:
    """Acknowledge an alert: someone is on it."""
    from core.ops.alerts import acknowledge_alert

    alert = acknowledge_alert(open_database(), alert_id, acting(actor))
    typer.echo(f"alert {alert.id} acknowledged by {alert.acknowledged_by}")


@alerts_app.command("evaluate")
def alerts_evaluate(as_json: AsJson = False) -> None:
    """Evaluate the rules now (runners do it every COUNTERSIGN_ALERT_INTERVAL)."""
    from core.ops.alerts import evaluate_alerts

    result = evaluate_alerts(open_database())
    if as_json:
        print_json(
            {
                "raised": [_alert_dict(a) for a in result.raised],
                "resolved": result.resolved,
                "skipped": result.skipped,
            }
        )
        return
    if result.skipped:
        typer.echo("another process is evaluating the rules; nothing done")
        return
    for alert in result.raised:
        typer.echo(f"raised {alert.id} {alert.severity} {alert.rule}: {alert.message}")
    typer.echo(f"{len(result.raised)} raised, {len(result.resolved)} resolved")
