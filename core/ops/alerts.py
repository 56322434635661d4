"""Alerts: rules the runners evaluate, raised once per subject, resolved when cleared.

Each rule is a small function returning what is wrong now, one ``Finding``
per subject (an approval, workflow, notification or runner id).
``evaluate_alerts`` inserts an ``alerts`` row for each new finding and queues
its notifications in the same transaction, and resolves open alerts whose
finding is gone. ``alerts`` is unique on (rule, subject), so a rule never
raises twice for one subject while its alert is open, also when two runners
evaluate at once: the write is an upsert that only touches a *resolved* row,
and on PostgreSQL a transaction-level advisory lock lets one runner evaluate
while the others skip that round (SQLite's ``BEGIN IMMEDIATE`` serialises
them anyway). A condition that comes back after its alert was resolved (a
workflow retried and failed again, a runner that came back and vanished
again) reopens that row: raised again, unacknowledged, notified again.

Notifications (kind ``alert.raised``) go to the ``admins`` group through the
same channels as approvals (``COUNTERSIGN_DEFAULT_CHANNELS``, ``auto`` = the
configured ones of email and Slack), and to every configured webhook
endpoint. Dead alert notifications do not raise ``delivery_dead`` alerts (a
broken channel would otherwise feed itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.base.config import Settings, get_settings
from core.base.errors import AlertNotFound, InvalidTransition
from core.engine.after_decision import rejections
from core.identity.permissions import Action, check
from core.outbox.writer import ALERT_KIND
from core.records import rows as store
from core.store.tables import (
    Alert,
    ApprovalRequest,
    Notification,
    RunnerHeartbeat,
    Workflow,
    utcnow,
)

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)

EVALUATOR = "system:alerts"
APPROVAL_EXPIRING = "approval_expiring"
WORKFLOW_FAILED = "workflow_failed"
DELIVERY_DEAD = "delivery_dead"
RUNNER_HEARTBEAT_MISSING = "runner_heartbeat_missing"
SEVERITIES = ("warning", "critical")
# New alerts one rule may raise per evaluation: a thousand failures at once
# raise (and notify) in rounds instead of flooding the channels.
MAX_RAISED_PER_RULE = 100
MAX_TEXT_CHARS = 300
# Any constant both dialects agree on; one evaluator at a time on PostgreSQL.
ADVISORY_LOCK_KEY = 0x43534E41  # "CSNA"


@dataclass(frozen=True)
class Finding:
    """Something a rule found wrong now."""

    rule: str
    subject: str
    severity: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    raised: list[Alert]
    resolved: list[int]
    skipped: bool = False  # another runner was evaluating


def _cut(value: str | None) -> str:
    value = " ".join((value or "").split())
    return value if len(value) <= MAX_TEXT_CHARS else value[: MAX_TEXT_CHARS - 1] + "…"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


# -- the rules -----------------------------------------------------------------------


def approvals_close_to_expiry(session: Session, now: datetime, settings: Settings) -> list[Finding]:
    """Open requests whose deadline is within ``COUNTERSIGN_ALERT_EXPIRY_WINDOW``."""
    rows = session.execute(
        select(
            ApprovalRequest.id, ApprovalRequest.title, ApprovalRequest.workflow_id, ApprovalRequest.expires_at
        )
        .where(
            ApprovalRequest.status == "pending",
            ApprovalRequest.expires_at.is_not(None),
            ApprovalRequest.expires_at <= now + timedelta(seconds=settings.alert_expiry_window),
        )
        .order_by(ApprovalRequest.expires_at)
    ).all()
    return [
        Finding(
            APPROVAL_EXPIRING,
            row.id,
            "warning",
            _cut(f"Approval request \u201c{row.title}\u201d expires at {_when(row.expires_at)}."),
            {
                "approval_id": row.id,
                "workflow_id": row.workflow_id,
                "title": _cut(row.title),
                "expires_at": row.expires_at.isoformat(),
            },
        )
        for row in rows
    ]


def failed_workflows(session: Session, now: datetime, settings: Settings) -> list[Finding]:
    """Workflows in status ``failed`` (retried or cancelled ones resolve)."""
    rows = session.execute(
        select(Workflow.id, Workflow.name, Workflow.error)
        .where(Workflow.status == "failed")
        .order_by(Workflow.updated_at)
    ).all()
    findings = []
    # Read from the rows, not the error's words (core.engine.after_decision).
    stopped = rejections(session, [row.id for row in rows])
    for row in rows:
        if row.id in stopped:
            # A person said no: the workflow stopped as designed. Worth a look, not a page.
            findings.append(
                Finding(
                    WORKFLOW_FAILED,
                    row.id,
                    "warning",
                    _cut(f"Workflow \u201c{row.name}\u201d stopped: its approval was rejected ({row.error})"),
                    {"workflow_id": row.id, "name": _cut(row.name), "rejected": True},
                )
            )
            continue
        findings.append(
            Finding(
                WORKFLOW_FAILED,
                row.id,
                "critical",
                _cut(f"Workflow \u201c{row.name}\u201d failed: {row.error or 'no error recorded'}"),
                {"workflow_id": row.id, "name": _cut(row.name)},
            )
        )
    return findings


def dead_deliveries(session: Session, now: datetime, settings: Settings) -> list[Finding]:
    """Notifications that gave up (``dead``); retried ones resolve. Alert messages excluded."""
    rows = session.execute(
        select(
            Notification.id,
            Notification.channel,
            Notification.recipient,
            Notification.attempts,
            Notification.last_error,
            Notification.approval_id,
            Notification.workflow_id,
        )
        .where(Notification.status == "dead", Notification.kind != ALERT_KIND)
        .order_by(Notification.updated_at)
    ).all()
    return [
        Finding(
            DELIVERY_DEAD,
            row.id,
            "warning",
            _cut(
                f"The {row.channel} notification to {row.recipient} is dead after "
                f"{row.attempts} attempts: {row.last_error or 'no error recorded'}"
            ),
            {
                "notification_id": row.id,
                "channel": row.channel,
                "recipient": row.recipient,
                "approval_id": row.approval_id,
                "workflow_id": row.workflow_id,
            },
        )
        for row in rows
    ]


def missing_heartbeats(session: Session, now: datetime, settings: Settings) -> list[Finding]:
    """Runners silent for longer than ``COUNTERSIGN_ALERT_HEARTBEAT_MISSING`` (stopped ones leave)."""
    rows = session.execute(
        select(RunnerHeartbeat.runner_id, RunnerHeartbeat.hostname, RunnerHeartbeat.last_seen_at)
        .where(RunnerHeartbeat.last_seen_at < now - timedelta(seconds=settings.alert_heartbeat_missing))
        .order_by(RunnerHeartbeat.last_seen_at)
    ).all()
    return [
        Finding(
            RUNNER_HEARTBEAT_MISSING,
            row.runner_id,
            "critical",
            _cut(
                f"Runner {row.runner_id} on {row.hostname or 'an unknown host'} has not "
                f"reported since {_when(row.last_seen_at)}."
            ),
            {"runner_id": row.runner_id, "last_seen_at": row.last_seen_at.isoformat()},
        )
        for row in rows
    ]


Rule = Callable[[Session, datetime, Settings], list[Finding]]
RULES: dict[str, Rule] = {
    APPROVAL_EXPIRING: approvals_close_to_expiry,
    WORKFLOW_FAILED: failed_workflows,
    DELIVERY_DEAD: dead_deliveries,
    RUNNER_HEARTBEAT_MISSING: missing_heartbeats,
}


# -- evaluation ----------------------------------------------------------------------


def _raise(session: Session, dialect: str, finding: Finding, now: datetime) -> int | None:
    """A new alert, or a resolved one of the same (rule, subject) reopened; its
    id, or None when an open one exists (another runner raised it first)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    fields = {
        "severity": finding.severity,
        "message": finding.message,
        "data": finding.data,
        "raised_at": now,
    }
    statement = insert(Alert).values(rule=finding.rule, subject=finding.subject, **fields)
    return session.execute(
        statement.on_conflict_do_update(
            index_elements=["rule", "subject"],
            set_={**fields, "resolved_at": None, "acknowledged_by": None, "acknowledged_at": None},
            where=Alert.resolved_at.is_not(None),
        ).returning(Alert.id)
    ).scalar_one_or_none()


def _open(session: Session, findings: Sequence[Finding]) -> set[tuple[str, str]]:
    """(rule, subject) of the findings that already have an open alert."""
    known: set[tuple[str, str]] = set()
    subjects = sorted({f.subject for f in findings})
    for start in range(0, len(subjects), 500):
        known.update(
            (r, s)
            for r, s in session.execute(
                select(Alert.rule, Alert.subject).where(
                    Alert.subject.in_(subjects[start : start + 500]), Alert.resolved_at.is_(None)
                )
            )
        )
    return known


def evaluate_alerts(db: Database, now: datetime | None = None) -> Evaluation:
    """Raise new alerts (and queue their notifications), resolve cleared ones."""
    now = now or utcnow()
    settings = get_settings()
    with db.session() as session:
        if db.is_postgres and not session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ):
            return Evaluation([], [], skipped=True)
        findings = [f for rule in RULES.values() for f in rule(session, now, settings)]
        current = {(f.rule, f.subject) for f in findings}
        known = _open(session, findings)
        raised: list[Alert] = []
        per_rule: dict[str, int] = {}
        for finding in findings:
            seen = (finding.rule, finding.subject) in known
            if seen or per_rule.get(finding.rule, 0) >= MAX_RAISED_PER_RULE:
                continue
            alert_id = _raise(session, db.dialect, finding, now)
            if alert_id is None:
                continue
            per_rule[finding.rule] = per_rule.get(finding.rule, 0) + 1
            alert = session.get(Alert, alert_id)
            assert alert is not None
            _queue_notifications(session, alert)
            raised.append(alert)
        still_open = session.execute(
            select(Alert.id, Alert.rule, Alert.subject).where(
                Alert.resolved_at.is_(None), Alert.raised_at <= now
            )
        ).all()
        cleared = [row.id for row in still_open if (row.rule, row.subject) not in current]
        if cleared:
            session.execute(
                update(Alert)
                .where(Alert.id.in_(cleared), Alert.resolved_at.is_(None))
                .values(resolved_at=now)
                .execution_options(synchronize_session=False)
            )
    for alert in raised:
        log.warning("alert raised", rule=alert.rule, subject=alert.subject, severity=alert.severity)
    if cleared:
        log.info("alerts resolved", count=len(cleared))
    return Evaluation(raised, cleared)


def alert_title(alert: Alert) -> str:
    """The alert's title on the Monitor: its rule's (``RULE_TITLES``), except that a workflow
    stopped by a rejection is named so, not "Workflow failed" (a person's decision)."""
    from core.channels.alerts import REJECTED_TITLE, RULE_TITLES  # Slack's SDK: only when asked

    if alert.rule == WORKFLOW_FAILED and (alert.data or {}).get("rejected"):
        return REJECTED_TITLE
    return RULE_TITLES.get(alert.rule, alert.rule)


def subject_link(alert: Alert) -> str:
    """The dashboard page of what the alert is about (the Monitor when it has none)."""
    from urllib.parse import urlencode

    from core.approvals.links import approval_link

    data = alert.data or {}
    base = get_settings().dashboard_url.rstrip("/")
    if data.get("approval_id"):
        return approval_link(str(data["approval_id"]))
    if data.get("workflow_id"):
        return f"{base}/workflow?" + urlencode({"workflow": data["workflow_id"]})
    return f"{base}/monitor"


def alert_payload(alert: Alert) -> dict[str, Any]:
    """What a channel needs to show an alert (kept in the outbox row)."""
    return {
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "severity": alert.severity,
        "message": alert.message,
        "raised_at": alert.raised_at.isoformat(),
        "data": dict(alert.data or {}),
        "url": subject_link(alert),
        "monitor_url": get_settings().dashboard_url.rstrip("/") + "/monitor",
    }


def _queue_notifications(session: Session, alert: Alert) -> None:
    from core.identity.groups import ADMINS_GROUP
    from core.outbox.settings import configured_person_channels, webhook_endpoints

    channels = get_settings().default_channels
    if channels is None:
        channels = configured_person_channels(session)
    payload = {"alert": alert_payload(alert)}
    workflow_id = (alert.data or {}).get("workflow_id")
    for channel in dict.fromkeys(c for c in channels if c != "webhook"):
        session.add(
            Notification(
                kind=ALERT_KIND,
                channel=channel,
                recipient=ADMINS_GROUP,
                workflow_id=workflow_id,
                payload=payload,
            )
        )
    for url in webhook_endpoints(session):
        session.add(
            Notification(
                kind=ALERT_KIND, channel="webhook", recipient=url, workflow_id=workflow_id, payload=payload
            )
        )


# -- reading and acknowledging -----------------------------------------------------------


def open_alerts(db: Database) -> list[Alert]:
    """Unresolved alerts, most severe and newest first."""
    with db.read() as session:
        rows = session.scalars(
            select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.raised_at.desc(), Alert.id.desc())
        ).all()
    return sorted(
        rows, key=lambda a: SEVERITIES.index(a.severity) if a.severity in SEVERITIES else 0, reverse=True
    )


def resolved_alerts(db: Database, *, since: timedelta = timedelta(days=7), limit: int = 50) -> list[Alert]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Alert)
                .where(Alert.resolved_at.is_not(None), Alert.resolved_at >= utcnow() - since)
                .order_by(Alert.resolved_at.desc())
                .limit(limit)
            ).all()
        )


def open_counts(db: Database) -> dict[str, int]:
    """Open alerts by rule (every rule named, zero included)."""
    with db.read() as session:
        counts = {
            rule: int(count)
            for rule, count in session.execute(
                select(Alert.rule, func.count()).where(Alert.resolved_at.is_(None)).group_by(Alert.rule)
            )
        }
    return {rule: int(counts.get(rule, 0)) for rule in RULES}


def acknowledge_alert(db: Database, alert_id: int, actor: str) -> Alert:
    """Someone has seen it: recorded on the alert and in the audit trail."""
    with db.session() as session:
        check(session, actor, Action.ALERTS_ACKNOWLEDGE)
        alert = session.get(Alert, alert_id, with_for_update=True)
        if alert is None:
            raise AlertNotFound(f"No alert has the id {alert_id}.")
        if alert.acknowledged_at is not None:
            raise InvalidTransition(f"Alert {alert_id} was already acknowledged by {alert.acknowledged_by}.")
        alert.acknowledged_by = actor
        alert.acknowledged_at = utcnow()
        store.append_event(
            session,
            "alert.acknowledged",
            actor,
            workflow_id=(alert.data or {}).get("workflow_id"),
            approval_id=(alert.data or {}).get("approval_id"),
            data={"alert_id": alert.id, "rule": alert.rule, "subject": alert.subject},
        )
    return alert


__all__ = [
    "evaluate_alerts",
    "acknowledge_alert",
    "open_alerts",
    "resolved_alerts",
    "open_counts",
    "alert_payload",
    "alert_title",
    "subject_link",
    "Finding",
    "Evaluation",
    "RULES",
    "ALERT_KIND",
]
