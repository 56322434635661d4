"""Each rule raises once per subject while its alert is open, resolves when the condition
clears, and raises again if it comes back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from core.approvals.engine import ApprovalEngine
from core.channels.dispatcher import retry_notification
from core.engine import workflows as ops
from core.identity.users import add_user
from core.ops.alerts import (
    ALERT_KIND,
    APPROVAL_EXPIRING,
    DELIVERY_DEAD,
    RUNNER_HEARTBEAT_MISSING,
    WORKFLOW_FAILED,
    evaluate_alerts,
    open_counts,
)
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import Alert, Notification, RunnerHeartbeat, utcnow
from tests.integration.channels.conftest import ask, dispatcher
from tests.integration.ops_alerts.conftest import failed_workflow


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """The admin who retries workflows and deliveries has an account (core.identity.permissions)."""
    add_user(db, "admin@example.com", role="admin")


def alerts_of(db: Database, rule: str) -> list[Alert]:
    with db.read() as session:
        return list(session.scalars(select(Alert).where(Alert.rule == rule).order_by(Alert.id)))


def alert_notifications(db: Database) -> list[Notification]:
    with db.read() as session:
        return list(session.scalars(select(Notification).where(Notification.kind == ALERT_KIND)))


def test_an_approval_close_to_its_deadline_raises_once_and_resolves_when_answered(db: Database) -> None:
    soon = ask(db, "Pay invoice 42", channels=[], config={"timeout": "30m"})
    later = ask(db, "Pay invoice 43", channels=[], config={"timeout": "2d"})
    first = evaluate_alerts(db)
    assert [(a.rule, a.subject) for a in first.raised] == [(APPROVAL_EXPIRING, soon)]
    assert "Pay invoice 42" in first.raised[0].message and first.raised[0].severity == "warning"
    assert evaluate_alerts(db).raised == []
    # Nearly two days on, the other request is within the hour too.
    assert [a.subject for a in evaluate_alerts(db, utcnow() + timedelta(days=1, hours=23)).raised] == [later]

    ApprovalEngine(db).respond_to_approval(soon, "bob@example.com", "approve")
    result = evaluate_alerts(db)
    [alert] = [a for a in alerts_of(db, APPROVAL_EXPIRING) if a.subject == soon]
    assert alert.id in result.resolved and alert.resolved_at is not None
    assert evaluate_alerts(db).raised == []  # never raised twice for one subject
    assert len(alerts_of(db, APPROVAL_EXPIRING)) == 2


def test_a_failed_workflow_raises_once_and_resolves_when_retried(db: Database) -> None:
    workflow = failed_workflow(db)
    [alert] = evaluate_alerts(db).raised
    assert (alert.rule, alert.subject, alert.severity) == (WORKFLOW_FAILED, workflow.id, "critical")
    assert "Release api" in alert.message and "version" in alert.message
    assert evaluate_alerts(db).raised == []
    ops.retry_workflow(db, workflow.id, "admin@example.com")
    assert evaluate_alerts(db).resolved == [alert.id]
    assert evaluate_alerts(db).resolved == []
    # It fails again: the same row is raised again, unacknowledged, and notified again.
    with db.session() as session:
        session.execute(
            update(Alert)
            .where(Alert.id == alert.id)
            .values(acknowledged_by="ops@example.com", acknowledged_at=utcnow())
        )
    notified = len(alert_notifications(db))
    build_runner(db, dispatch_notifications=False).run_until_idle()
    assert ops.get_workflow(db, workflow.id).status == "failed"
    [again] = evaluate_alerts(db).raised
    assert (again.id, again.resolved_at, again.acknowledged_by) == (alert.id, None, None)
    assert again.raised_at > alert.raised_at
    assert len(alert_notifications(db)) == 2 * notified > 0
    assert evaluate_alerts(db).raised == []


def test_a_dead_delivery_raises_but_dead_alert_messages_do_not(db: Database) -> None:
    approval_id = ask(db, "Pay invoice 42")  # email, and no mail server is configured
    assert dispatcher(db).dispatch_until_idle() == 0
    with db.read() as session:
        dead = session.scalars(select(Notification).where(Notification.approval_id == approval_id)).one()
    assert dead.status == "dead"
    [alert] = evaluate_alerts(db).raised
    assert (alert.rule, alert.subject) == (DELIVERY_DEAD, dead.id)
    # The alert's own email dies the same way; that raises nothing more.
    dispatcher(db).dispatch_until_idle()
    assert [n.status for n in alert_notifications(db)] == ["dead"]
    assert evaluate_alerts(db).raised == []
    retry_notification(db, dead.id, "admin@example.com")
    assert evaluate_alerts(db).resolved == [alert.id]


def test_a_silent_runner_raises_and_resolves_when_it_beats_again(db: Database) -> None:
    with db.session() as session:
        session.add(
            RunnerHeartbeat(runner_id="gone", hostname="box-1", last_seen_at=utcnow() - timedelta(minutes=10))
        )
        session.add(RunnerHeartbeat(runner_id="alive", hostname="box-2", last_seen_at=utcnow()))
    [alert] = evaluate_alerts(db).raised
    assert (alert.rule, alert.subject, alert.severity) == (RUNNER_HEARTBEAT_MISSING, "gone", "critical")
    assert "box-1" in alert.message
    with db.session() as session:
        session.execute(
            update(RunnerHeartbeat).where(RunnerHeartbeat.runner_id == "gone").values(last_seen_at=utcnow())
        )
    assert evaluate_alerts(db).resolved == [alert.id]


def test_the_thresholds_come_from_the_environment(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.base.config import get_settings

    ask(db, "Pay invoice 42", channels=[], config={"timeout": "3h"})
    assert evaluate_alerts(db).raised == []
    monkeypatch.setenv("COUNTERSIGN_ALERT_EXPIRY_WINDOW", "4h")
    get_settings.cache_clear()
    assert [a.rule for a in evaluate_alerts(db).raised] == [APPROVAL_EXPIRING]


def test_runners_evaluating_at_once_raise_and_notify_once(db: Database) -> None:
    workflow = failed_workflow(db)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: evaluate_alerts(db), range(4)))
    assert sum(len(r.raised) for r in results) == 1
    assert [a.subject for a in alerts_of(db, WORKFLOW_FAILED)] == [workflow.id]
    [notification] = alert_notifications(db)
    assert (notification.channel, notification.recipient, notification.workflow_id) == (
        "email",
        "admins",
        workflow.id,
    )


def test_open_alerts_are_counted_by_rule_in_metrics(db: Database) -> None:
    from prometheus_client import generate_latest

    from core.ops.metrics import make_registry

    failed_workflow(db)
    evaluate_alerts(db)
    assert open_counts(db)[WORKFLOW_FAILED] == 1
    samples = {
        (s.name, s.labels.get("rule")): s.value
        for family in text_string_to_metric_families(generate_latest(make_registry(db)).decode())
        for s in family.samples
        if s.name == "countersign_alerts_open"
    }
    assert samples[("countersign_alerts_open", WORKFLOW_FAILED)] == 1
    assert samples[("countersign_alerts_open", DELIVERY_DEAD)] == 0
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 1


def test_an_ordinary_rejection_is_a_warning_not_a_critical_alert(db: Database) -> None:
    add_user(db, "ann@example.com")
    definition = {
        "name": "Refund",
        "steps": [
            {
                "name": "ask",
                "type": "approval",
                "approval_config": {
                    "title": "Refund 40",
                    "requested_from": "ann@example.com",
                    "channels": [],
                },
            }
        ],
    }
    workflow = ops.create_workflow(db, definition, created_by="cli:ops")
    runner = build_runner(db, dispatch_notifications=False)
    runner.run_until_idle()
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow.id)
    ApprovalEngine(db).respond_to_approval(approval.id, "ann@example.com", "reject", comment="no")
    runner.run_until_idle()
    assert ops.get_workflow(db, workflow.id).status == "failed"
    [alert] = evaluate_alerts(db).raised
    assert (alert.rule, alert.subject, alert.severity) == (WORKFLOW_FAILED, workflow.id, "warning")
    assert alert.message == (
        "Workflow \u201cRefund\u201d stopped: its approval was rejected (Step 'ask': approval rejected.)"
    )
