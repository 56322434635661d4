"""Reminders before the deadline (``approval_config.remind``), each sent once: emails
counted at the loopback aiosmtpd server, the Slack message updated in place through
the real ``slack_sdk`` (``chat.update``, never a second ``chat.postMessage``), and an
``approval.reminder`` webhook event verified by the receiver. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from core.approvals.engine import ApprovalEngine
from core.approvals.reminder_sender import send_due_reminders
from core.engine.runner import Runner
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalReminder, ApprovalRequest, WorkflowEvent, utcnow
from tests.integration.channels.conftest import Mailbox, SlackAPI, WebhookReceiver, ask, dispatcher

BOB = "bob@example.com"


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    add_user(db, "agent@example.com", role="service")
    add_user(db, BOB, role="approver")


def deadline_of(db: Database, approval_id: str) -> datetime:
    with db.read() as session:
        approval = session.get(ApprovalRequest, approval_id)
        assert approval is not None and approval.expires_at is not None
        return approval.expires_at


def reminders(db: Database, approval_id: str) -> list[tuple[float, str]]:
    with db.read() as session:
        return [
            (r.share, r.status)
            for r in session.scalars(
                select(ApprovalReminder)
                .where(ApprovalReminder.approval_id == approval_id)
                .order_by(ApprovalReminder.escalation, ApprovalReminder.share)
            )
        ]


def reminder_events(db: Database, approval_id: str) -> list[WorkflowEvent]:
    with db.read() as session:
        return list(
            session.scalars(
                select(WorkflowEvent)
                .where(
                    WorkflowEvent.approval_id == approval_id, WorkflowEvent.event_type == "approval.reminder"
                )
                .order_by(WorkflowEvent.id)
            )
        )


def subjects(smtp: Mailbox) -> list[str]:
    return [str(m["Subject"]) for m in smtp.received()]


def test_each_reminder_goes_out_once_by_email_slack_update_and_webhook(
    db: Database, smtp: Mailbox, slack_api: SlackAPI, webhook_receiver: WebhookReceiver
) -> None:
    smtp.start()
    approval_id = ask(
        db, channels=["email", "slack"], to=BOB, config={"timeout": "1h", "remind": ["50%", "90%"]}
    )
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    assert subjects(smtp) == ["Approval needed: Pay invoice 42"]
    [post] = slack_api.payloads("chat.postMessage")
    assert reminders(db, approval_id) == [(50.0, "due"), (90.0, "due")]
    deadline = deadline_of(db, approval_id)

    # Before 50% of the hour nothing is due.
    assert send_due_reminders(db, now=deadline - timedelta(minutes=31)) == 0
    assert send_due_reminders(db, now=deadline - timedelta(minutes=29)) == 1
    assert send_due_reminders(db, now=deadline - timedelta(minutes=29)) == 0  # sent once
    assert reminders(db, approval_id) == [(50.0, "sent"), (90.0, "due")]
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    assert subjects(smtp) == ["Approval needed: Pay invoice 42", "Reminder: Pay invoice 42"]
    reminder_mail = smtp.received()[1]
    body = reminder_mail.get_body(("plain",))
    assert body is not None and "Reminder: 29m left to answer" in body.get_content()
    # Slack: the message sent earlier is updated in place, still with its buttons.
    assert len(slack_api.payloads("chat.postMessage")) == 1
    [update] = slack_api.payloads("chat.update")
    assert update["ts"] and update["channel"] == "D-U0BOB"
    assert "Reminder: 29m left to answer" in str(update["blocks"])
    assert "countersign_approve" in str(update["blocks"])
    assert slack_api.problems == []
    hooks = [v["payload"] for v in webhook_receiver.accepted()]
    reminded = [h for h in hooks if h["type"] == "approval.reminder"]
    assert len(reminded) == 1
    assert reminded[0]["data"]["approval_id"] == approval_id
    assert reminded[0]["data"]["reminder"]["share"] == "50%"

    assert send_due_reminders(db, now=deadline - timedelta(minutes=5)) == 1
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    assert subjects(smtp).count("Reminder: Pay invoice 42") == 2
    assert len(slack_api.payloads("chat.postMessage")) == 1
    assert len(slack_api.payloads("chat.update")) == 2
    assert [
        h["data"]["reminder"]["share"]
        for h in (v["payload"] for v in webhook_receiver.accepted())
        if h["type"] == "approval.reminder"
    ] == ["50%", "90%"]
    assert [e.data["share"] for e in reminder_events(db, approval_id)] == ["50%", "90%"]
    assert post["channel"] == "U0BOB"


def test_runners_racing_send_each_reminder_exactly_once(db: Database, smtp: Mailbox) -> None:
    smtp.start()
    approval_id = ask(
        db, channels=["email"], to=BOB, config={"timeout": "1h", "remind": ["25%", "50%", "75%"]}
    )
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    late = deadline_of(db, approval_id) - timedelta(minutes=1)  # all three are due
    # Six runner processes' worth of database connections, started together.
    runners = [Database(db.url) for _ in range(6)]
    start = threading.Barrier(len(runners))
    counts: list[int] = []
    errors: list[BaseException] = []

    def runner(own: Database, number: int) -> None:
        try:
            start.wait()
            counts.append(send_due_reminders(own, runner_id=f"runner-{number}", now=late))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(own, n)) for n, own in enumerate(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for own in runners:
        own.dispose()
    assert errors == []
    assert sum(counts) == 3
    assert reminders(db, approval_id) == [(25.0, "sent"), (50.0, "sent"), (75.0, "sent")]
    assert len(reminder_events(db, approval_id)) == 3
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    assert subjects(smtp).count("Reminder: Pay invoice 42") == 3
    assert len(smtp.received()) == 4


def test_a_decided_request_gets_no_reminder_and_those_who_answered_get_none(
    db: Database, smtp: Mailbox
) -> None:
    smtp.start()
    add_user(db, "carol@example.com", role="approver")
    engine = ApprovalEngine(db)
    approval_id = ask(
        db,
        channels=["email"],
        to=[BOB, "carol@example.com"],
        config={"timeout": "1h", "remind": ["50%", "90%"], "approval_threshold": 2},
    )
    engine.respond_to_approval(approval_id, BOB, "approve")
    deadline = deadline_of(db, approval_id)
    assert send_due_reminders(db, now=deadline - timedelta(minutes=20)) == 1
    [event] = reminder_events(db, approval_id)
    assert event.data["recipients"] == ["carol@example.com"]  # bob has answered
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    reminded = [m for m in smtp.received() if str(m["Subject"]).startswith("Reminder:")]
    assert [m["To"] for m in reminded] == ["carol@example.com"]
    engine.respond_to_approval(approval_id, "carol@example.com", "approve")
    assert send_due_reminders(db, now=deadline - timedelta(minutes=1)) == 0
    assert reminders(db, approval_id) == [(50.0, "sent"), (90.0, "skipped")]
    assert len(reminder_events(db, approval_id)) == 1


def test_the_runner_loop_sends_a_due_reminder_once(db: Database, smtp: Mailbox) -> None:
    smtp.start()
    approval_id = ask(db, channels=["email"], to=BOB, config={"timeout": "1h", "remind": ["50%"]})
    with db.session() as session:  # half the hour has passed
        session.execute(
            update(ApprovalReminder)
            .where(ApprovalReminder.approval_id == approval_id)
            .values(due_at=utcnow() - timedelta(seconds=1))
        )
    for number in range(2):
        Runner(db, runner_id=f"runner-{number}").run_until_idle(max_seconds=30)
    assert reminders(db, approval_id) == [(50.0, "sent")]
    [event] = reminder_events(db, approval_id)
    assert event.data["runner"] == "runner-0"
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    assert subjects(smtp) == ["Approval needed: Pay invoice 42", "Reminder: Pay invoice 42"]
