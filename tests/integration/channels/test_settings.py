"""Channel configuration for the Settings page: status with masked secrets, test sends, disabling."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.base.errors import ChannelError, ConfigurationError
from core.channels.registry import channel_status, test_channel
from core.outbox.settings import save_channel_settings
from core.store.db import Database
from core.store.tables import Notification
from tests.integration.channels.conftest import (
    WEBHOOK_SECRET,
    Mailbox,
    SlackAPI,
    WebhookReceiver,
    ask,
    dispatcher,
)


def test_status_reports_configuration_and_never_a_secret(
    db: Database, slack_api: SlackAPI, webhook_receiver: WebhookReceiver, smtp: Mailbox
) -> None:
    status = {s["channel"]: s for s in channel_status(db)}
    assert set(status) == {"email", "slack", "webhook"}
    assert all(s["configured"] and s["enabled"] for s in status.values())
    dumped = json.dumps(status)
    assert "xoxb-test-token" not in dumped and WEBHOOK_SECRET not in dumped
    assert status["slack"]["SLACK_BOT_TOKEN"].endswith("oken") and "•" in status["slack"]["SLACK_BOT_TOKEN"]
    assert status["email"]["smtp_host"] == "127.0.0.1" and status["email"]["provider"] == "smtp"
    assert status["webhook"]["endpoints"] == [webhook_receiver.url + "/hooks"]


def test_unconfigured_channels_say_so(db: Database) -> None:
    status = {s["channel"]: s for s in channel_status(db)}
    assert not any(s["configured"] for s in status.values())
    assert status["slack"]["SLACK_BOT_TOKEN"] == "(not set)"


def test_test_sends_go_through_each_channel(
    db: Database, slack_api: SlackAPI, webhook_receiver: WebhookReceiver, smtp: Mailbox
) -> None:
    smtp.start()
    assert test_channel(db, "email", "ops@example.com")["to"] == "ops@example.com"
    assert [m["Subject"] for m in smtp.received()] == ["Countersign test message"]
    assert test_channel(db, "slack", "bob@example.com")["channel"] == "D-U0BOB"
    test_channel(db, "webhook", "")
    assert [v["payload"]["type"] for v in webhook_receiver.accepted()] == ["countersign.test"]
    with pytest.raises(ChannelError, match="slack test failed.*users_not_found"):
        test_channel(db, "slack", "nobody@example.com")
    with pytest.raises(ConfigurationError, match="Unknown channel"):
        test_channel(db, "fax", "x")


def test_settings_refuse_secrets_and_a_disabled_channel_is_not_delivered(db: Database, smtp: Mailbox) -> None:
    with pytest.raises(ConfigurationError, match="smtp_password"), db.session() as session:
        save_channel_settings(session, "email", enabled=True, settings={"smtp_password": "x"})
    with db.session() as session:
        save_channel_settings(session, "email", enabled=False, settings={"from": "a@countersign.test"})
    smtp.start()
    approval_id = ask(db)
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    with db.read() as session:
        row = session.scalars(select(Notification).where(Notification.approval_id == approval_id)).one()
    assert row.status == "dead" and "disabled" in (row.last_error or "")
    assert smtp.received() == []
    status = {s["channel"]: s for s in channel_status(db)}
    assert status["email"]["enabled"] is False and status["email"]["from"] == "a@countersign.test"
