"""Alert notifications go out through the real channels, escaped, and the runner raises them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from core.base.config import get_settings
from core.identity.users import add_user
from core.ops.alerts import ALERT_KIND, WORKFLOW_FAILED, evaluate_alerts
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import Alert, Notification, RunnerHeartbeat, utcnow
from tests.integration.channels.conftest import Mailbox, SlackAPI, WebhookReceiver, dispatcher, wait_until
from tests.integration.ops_alerts.conftest import failed_workflow

NASTY_NAME = '<script>alert("x")</script> & <b>Payroll</b>'


def test_an_alert_reaches_the_admins_by_email_slack_and_webhook_escaped(
    db: Database,
    smtp: Mailbox,
    slack_api: SlackAPI,
    webhook_receiver: WebhookReceiver,
    channel_env: pytest.MonkeyPatch,
) -> None:
    channel_env.setenv("COUNTERSIGN_DEFAULT_CHANNELS", "email,slack")
    channel_env.setenv("SLACK_USER_MAP", json.dumps({"admins": "C0ADMINS"}))
    get_settings.cache_clear()
    smtp.start()
    add_user(db, "admin@example.com", role="admin")
    add_user(db, "root@example.com", role="admin")
    add_user(db, "bob@example.com", role="approver")
    workflow = failed_workflow(db, NASTY_NAME)
    [alert] = evaluate_alerts(db).raised
    with db.read() as session:
        queued = sorted(
            (n.channel, n.recipient)
            for n in session.scalars(select(Notification).where(Notification.kind == ALERT_KIND))
        )
    assert queued == [("email", "admins"), ("slack", "admins"), ("webhook", webhook_receiver.url + "/hooks")]
    assert dispatcher(db).dispatch_until_idle() == 4  # and the workflow.finished webhook

    # Email: one message per admin, the name escaped in HTML, plain in the subject and text.
    messages = smtp.received()
    assert sorted(str(m["To"]) for m in messages) == ["admin@example.com", "root@example.com"]
    message = messages[0]
    assert str(message["Subject"]).startswith("[critical] Workflow failed: Workflow")
    assert NASTY_NAME in str(message["Subject"])
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "<b>Payroll" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;Payroll&lt;/b&gt;" in html
    assert f"http://dash.test:8501/workflow?workflow={workflow.id}" in html
    assert NASTY_NAME in text and "Countersign alert (critical): Workflow failed" in text

    # Slack: to the admins' channel, mrkdwn escaped, inside Block Kit's limits.
    [posted] = slack_api.posted
    assert posted["channel"] == "C0ADMINS" and slack_api.problems == []
    blocks = posted["blocks"] if isinstance(posted["blocks"], list) else json.loads(posted["blocks"])
    section = blocks[1]["text"]["text"]
    assert "&lt;script&gt;" in section and "<script>" not in section

    # Webhook: signed, the alert as data.
    [received] = [r for r in webhook_receiver.accepted() if r["payload"]["type"] == ALERT_KIND]
    assert received["payload"]["data"]["alert_id"] == alert.id
    assert received["payload"]["data"]["rule"] == WORKFLOW_FAILED
    assert NASTY_NAME in received["payload"]["data"]["message"]


def test_a_running_runner_evaluates_the_rules_and_leaves_no_heartbeat_when_stopped(
    db: Database,
    channel_env: pytest.MonkeyPatch,
) -> None:
    channel_env.setenv("COUNTERSIGN_ALERT_INTERVAL", "0.2")
    get_settings.cache_clear()
    workflow = failed_workflow(db)
    with db.session() as session:
        session.add(RunnerHeartbeat(runner_id="vanished", last_seen_at=utcnow() - timedelta(hours=1)))
    runner = build_runner(db, runner_id="evaluator", lease_seconds=0.6, dispatch_notifications=False)
    runner.start()
    try:

        def subjects() -> set[str]:
            with db.read() as session:
                return set(session.scalars(select(Alert.subject)))

        wait_until(lambda: subjects() == {workflow.id, "vanished"}, what="the runner raises both alerts")
        with db.session() as session:
            session.execute(delete(RunnerHeartbeat).where(RunnerHeartbeat.runner_id == "vanished"))

        def resolved() -> bool:
            with db.read() as session:
                found = session.scalar(select(Alert.resolved_at).where(Alert.subject == "vanished"))
            return found is not None

        wait_until(resolved, what="the runner resolves the cleared alert on a later round")
    finally:
        runner.stop()
    with db.read() as session:
        assert session.get(RunnerHeartbeat, "evaluator") is None


def test_an_alert_about_a_rejection_is_titled_as_one_in_email_and_slack(
    db: Database, smtp: Mailbox, slack_api: SlackAPI, channel_env: pytest.MonkeyPatch
) -> None:
    """A workflow a person's rejection stopped raises a warning whose email subject and
    Slack header say so, as the Monitor does, not "Workflow failed"."""
    from core.approvals.engine import ApprovalEngine
    from core.engine import workflows as ops

    channel_env.setenv("COUNTERSIGN_DEFAULT_CHANNELS", "email,slack")
    channel_env.setenv("SLACK_USER_MAP", json.dumps({"admins": "C0ADMINS"}))
    get_settings.cache_clear()
    smtp.start()
    add_user(db, "admin@example.com", role="admin")
    add_user(db, "ann@example.com", role="approver")
    definition = {
        "name": "Refund",
        "steps": [
            {
                "name": "ask",
                "type": "approval",
                "approval_config": {"requested_from": "ann@example.com", "channels": []},
            }
        ],
    }
    workflow = ops.create_workflow(db, definition, created_by="cli:ops")
    runner = build_runner(db, dispatch_notifications=False)
    runner.run_until_idle()
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow.id)
    ApprovalEngine(db).respond_to_approval(approval.id, "ann@example.com", "reject", comment="no")
    runner.run_until_idle()
    [alert] = evaluate_alerts(db).raised
    assert (alert.rule, alert.severity) == (WORKFLOW_FAILED, "warning")
    dispatcher(db).dispatch_until_idle()

    [message] = smtp.received()
    assert str(message["Subject"]).startswith("[warning] Workflow stopped: request rejected: "), message[
        "Subject"
    ]
    assert "Workflow failed" not in str(message["Subject"])
    [posted] = slack_api.posted
    assert "Workflow stopped: request rejected" in json.dumps(posted["blocks"])
    assert "Workflow failed" not in json.dumps(posted["blocks"])
