"""The dispatcher: nothing lost while a channel is down, breakers, dead rows and retry, claims."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select

from core.base.errors import InvalidTransition, NotificationNotFound
from core.channels.base import Delivery
from core.channels.dispatcher import retry_notification
from core.channels.webhook import WebhookChannel
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import Notification, WorkflowEvent
from tests.integration.channels.conftest import (
    Mailbox,
    SlackAPI,
    WebhookReceiver,
    ask,
    dispatcher,
    wait_until,
)


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """Who acts in these tests has an account (core.identity.permissions): the admin retries deliveries."""
    add_user(db, "admin@example.com", role="admin")


def by_channel(db: Database, channel: str) -> list[Notification]:
    with db.read() as session:
        return list(session.scalars(select(Notification).where(Notification.channel == channel)).all())


def test_smtp_down_for_a_while_loses_nothing_and_the_breaker_keeps_slack_delivering(
    db: Database, smtp: Mailbox, slack_api: SlackAPI
) -> None:
    people = ["bob@example.com", "carol@example.com"]
    approvals = [ask(db, f"Request {i}", to=people, channels=["email", "slack"]) for i in range(3)]
    worker = dispatcher(db, max_attempts=1000, breaker_threshold=2, breaker_cooldown=0.2)
    worker.start()
    try:
        # SMTP's port is closed: Slack goes out regardless.
        wait_until(
            lambda: all(r.status == "sent" for r in by_channel(db, "slack")),
            what="every Slack message sent while SMTP is down",
        )
        wait_until(
            lambda: sum(r.attempts for r in by_channel(db, "email")) >= 3, what="some failed email attempts"
        )
        emails = by_channel(db, "email")
        assert len(emails) == 6 and all(r.status in ("pending", "failed") for r in emails)
        assert any("unavailable" in (r.last_error or "") for r in emails)
        assert worker.breaker.failures("email") >= 2  # the breaker counted the outage
        assert len(slack_api.posted) == 6

        smtp.start()
        wait_until(
            lambda: all(r.status == "sent" for r in by_channel(db, "email")),
            what="every email sent once SMTP is back",
        )
    finally:
        worker.stop()

    received = smtp.received()
    per_recipient = Counter((m["To"], m["Subject"]) for m in received)
    assert per_recipient == Counter(
        {(p, f"Approval needed: Request {i}"): 1 for p in people for i in range(3)}
    )
    assert len({str(m["Message-ID"]).strip() for m in received}) == 6
    assert worker.breaker.failures("email") == 0
    assert {r.approval_id for r in by_channel(db, "email")} == set(approvals)


def test_after_the_last_attempt_a_row_is_dead_and_retry_requeues_it(db: Database, smtp: Mailbox) -> None:
    approval_id = ask(db)
    worker = dispatcher(db, max_attempts=3, breaker_threshold=100)
    assert worker.dispatch_until_idle(max_seconds=20) == 0
    [row] = by_channel(db, "email")
    assert (row.status, row.attempts) == ("dead", 3)
    assert "127.0.0.1" in (row.last_error or "")
    smtp.start()
    requeued = retry_notification(db, row.id, "admin@example.com")
    assert (requeued.status, requeued.attempts) == ("pending", 0)
    assert worker.dispatch_until_idle(max_seconds=20) == 1
    [row] = by_channel(db, "email")
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert len(smtp.received()) == 1
    with db.read() as session:
        kinds = session.scalars(
            select(WorkflowEvent.event_type)
            .where(WorkflowEvent.approval_id == approval_id, WorkflowEvent.event_type.like("notification.%"))
            .order_by(WorkflowEvent.id)
        ).all()
        retried = session.scalars(
            select(WorkflowEvent).where(WorkflowEvent.event_type == "notification.retried")
        ).one()
    assert kinds == ["notification.dead", "notification.retried"]
    assert retried.actor == "admin@example.com" and retried.before["status"] == "dead"
    with pytest.raises(InvalidTransition, match="Only dead notifications"):
        retry_notification(db, row.id, "admin@example.com")
    with pytest.raises(NotificationNotFound):
        retry_notification(db, "00000000-0000-0000-0000-000000000000", "admin@example.com")


def test_two_dispatchers_never_claim_the_same_row(db: Database) -> None:
    with db.session() as session:
        session.add_all(
            [
                Notification(approval_id=f"a{i}", channel="email", recipient=f"p{i}@example.com")
                for i in range(40)
            ]
        )
    workers = [dispatcher(db, batch_size=7) for _ in range(2)]
    claimed: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def claim_all(index: int) -> None:
        barrier.wait()
        while batch := workers[index].claim():
            claimed[index].extend(batch)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not set(claimed[0]) & set(claimed[1])
    assert len(claimed[0]) + len(claimed[1]) == 40


def test_a_crash_between_send_and_record_sends_again_with_the_same_id_and_loses_nothing(
    db: Database, webhook_receiver: WebhookReceiver
) -> None:
    ask(db, channels=[])
    doomed = dispatcher(db, claim_seconds=0.2)
    [claimed] = doomed.claim()
    with db.read() as session:
        row = session.get(Notification, claimed)
        assert row is not None
        delivery = Delivery(
            notification_id=row.id,
            kind=row.kind,
            channel=row.channel,
            recipient=row.recipient,
            attempt=1,
            payload=dict(row.payload),
        )
    WebhookChannel().send(delivery)  # sent ... and the process dies before recording it
    assert [r.status for r in by_channel(db, "webhook")] == ["pending"]

    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1  # the claim lapsed
    [row] = by_channel(db, "webhook")
    assert row.status == "sent"
    assert [v["id"] for v in webhook_receiver.accepted()] == [row.id, row.id]


def test_the_runner_starts_a_dispatcher_that_wakes_on_new_rows(
    db: Database, smtp: Mailbox, channel_env: pytest.MonkeyPatch
) -> None:
    channel_env.setenv("COUNTERSIGN_DISPATCH_POLL_SECONDS", "30")  # only a wake-up can be quick
    from core.base.config import get_settings

    get_settings.cache_clear()
    smtp.start()
    runner = build_runner(db, lease_seconds=10)
    runner.start()
    try:
        assert runner.dispatcher is not None and runner.dispatcher.policy.poll_seconds == 30
        ask(db)
        wait_until(lambda: len(smtp.received()) == 1, timeout=15, what="the email, sent on wake-up")
    finally:
        runner.stop()
    assert [r.status for r in by_channel(db, "email")] == ["sent"]


def test_a_hanging_mail_server_does_not_hold_up_slack_in_the_same_batch(
    db: Database, slack_api: SlackAPI, channel_env: pytest.MonkeyPatch
) -> None:
    import socket

    # Accepts connections (the kernel's backlog) but never greets: smtplib waits for its timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    channel_env.setenv("COUNTERSIGN_SMTP_HOST", "127.0.0.1")
    channel_env.setenv("COUNTERSIGN_SMTP_PORT", str(silent.getsockname()[1]))
    channel_env.setenv("COUNTERSIGN_SMTP_SECURITY", "none")
    channel_env.setenv("COUNTERSIGN_SMTP_TIMEOUT", "2")
    try:
        ask(db, "By mail", channels=["email"])  # older: due first
        ask(db, "By Slack", channels=["slack"])
        assert dispatcher(db).dispatch_once() == 2
    finally:
        silent.close()
    [email_row] = by_channel(db, "email")
    [slack_row] = by_channel(db, "slack")
    assert email_row.status == "failed" and "timed out" in (email_row.last_error or "")
    assert slack_row.status == "sent" and slack_row.sent_at is not None
    assert slack_row.sent_at < email_row.updated_at  # Slack did not wait for the mail timeout
