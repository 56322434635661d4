"""Several ``python -m core runner`` processes, started together over one database
(SQLite and PostgreSQL), send each due reminder exactly once: one ``sent`` row and
one ``approval.reminder`` event per reminder, one email each at the loopback
aiosmtpd server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalReminder, WorkflowEvent, utcnow
from tests.integration.channels.conftest import LINK_SECRET, Mailbox, ask, dispatcher

ROOT = Path(__file__).resolve().parents[3]
BOB = "bob@example.com"
SHARES = ["10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%"]
PROCESSES = 3


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    add_user(db, "agent@example.com", role="service")
    add_user(db, BOB, role="approver")


def runner_env(db: Database) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COUNTERSIGN_", "SLACK_"))}
    env.update(
        DATABASE_URL=db.url,
        PYTHONUNBUFFERED="1",
        COUNTERSIGN_DEMO="off",
        COUNTERSIGN_SECRETS_FILE="/nonexistent/secrets.toml",
        COUNTERSIGN_LINK_SECRETS=LINK_SECRET,
        COUNTERSIGN_LOG_LEVEL="WARNING",
    )
    return env


def test_runner_processes_send_each_reminder_once(db: Database, smtp: Mailbox) -> None:
    smtp.start()
    approval_id = ask(db, channels=["email"], to=BOB, config={"timeout": "1h", "remind": SHARES})
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    with db.session() as session:  # every reminder is due
        session.execute(
            update(ApprovalReminder)
            .where(ApprovalReminder.approval_id == approval_id)
            .values(due_at=utcnow())
        )
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "core", "runner", "--until-idle"],
            cwd=ROOT,
            env=runner_env(db),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0] * PROCESSES, outputs
    with db.read() as session:
        rows = session.scalars(
            select(ApprovalReminder).where(ApprovalReminder.approval_id == approval_id)
        ).all()
        events = session.scalars(
            select(WorkflowEvent).where(
                WorkflowEvent.approval_id == approval_id, WorkflowEvent.event_type == "approval.reminder"
            )
        ).all()
    assert sorted(r.status for r in rows) == ["sent"] * len(SHARES)
    assert sorted(e.data["share"] for e in events) == sorted(SHARES)
    assert all(r.sent_by for r in rows)
    dispatcher(db).dispatch_until_idle(max_seconds=30)
    reminders = [m for m in smtp.received() if str(m["Subject"]).startswith("Reminder:")]
    assert len(reminders) == len(SHARES)
    assert len(smtp.received()) == len(SHARES) + 1  # and the request itself
