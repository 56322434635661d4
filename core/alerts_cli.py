"""``python -m core alerts ...``: list, acknowledge and evaluate alerts.

Registered by ``core.cli``; its helpers are imported when a command runs, so
the two modules do not import each other at load time.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

alerts_app = typer.Typer(no_args_is_help=True, help="Alerts the runners raise (see core/alerts.py).")

AsJson = Annotated[bool, typer.Option("--json", help="Print only JSON.")]


def _alert_dict(alert: Any) -> dict[str, Any]:
    return {"id": alert.id, "rule": alert.rule, "subject": alert.subject, "severity": alert.severity,
            "message": alert.message, "data": alert.data, "raised_at": alert.raised_at,
            "resolved_at": alert.resolved_at, "acknowledged_by": alert.acknowledged_by,
            "acknowledged_at": alert.acknowledged_at}


@alerts_app.command("list")
def alerts_list(
    resolved: Annotated[bool, typer.Option(help="Also resolved alerts of the last 7 days.")] = False,
    as_json: AsJson = False,
) -> None:
    """Open alerts, most severe first (and recently resolved ones with --resolved)."""
    from core import alerts
    from core.cli import _db, _print_json, _table

    db = _db()
    rows = alerts.open_alerts(db) + (alerts.resolved_alerts(db) if resolved else [])
    if as_json:
        _print_json([_alert_dict(a) for a in rows])
        return
    _table([[a.id, a.severity, a.rule, "resolved" if a.resolved_at else
             ("acknowledged" if a.acknowledged_at else "open"),
             a.raised_at.strftime("%Y-%m-%d %H:%M"), a.message[:80]] for a in rows],
           ["ID", "SEVERITY", "RULE", "STATE", "RAISED", "MESSAGE"])
    typer.echo(f"{sum(a.resolved_at is None for a in rows)} open")


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id (see `alerts list`).")],
    actor: Annotated[str | None, typer.Option("--as", help="Who is acting (recorded in the audit trail).")]
    = None,
) -> None:
    """Acknowledge an alert: someone is on it."""
    from core.alerts import acknowledge_alert
    from core.cli import DEFAULT_ACTOR, _db

    alert = acknowledge_alert(_db(), alert_id, actor or DEFAULT_ACTOR)
    typer.echo(f"alert {alert.id} acknowledged by {alert.acknowledged_by}")


@alerts_app.command("evaluate")
def alerts_evaluate(as_json: AsJson = False) -> None:
    """Evaluate the rules now (runners do it every COUNTERSIGN_ALERT_INTERVAL)."""
    from core.alerts import evaluate_alerts
    from core.cli import _db, _print_json

    result = evaluate_alerts(_db())
    if as_json:
        _print_json({"raised": [_alert_dict(a) for a in result.raised], "resolved": result.resolved,
                     "skipped": result.skipped})
        return
    if result.skipped:
        typer.echo("another process is evaluating the rules; nothing done")
        return
    for alert in result.raised:
        typer.echo(f"raised {alert.id} {alert.severity} {alert.rule}: {alert.message}")
    typer.echo(f"{len(result.raised)} raised, {len(result.resolved)} resolved")
