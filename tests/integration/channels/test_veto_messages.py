"""A veto window's announcement in email (loopback aiosmtpd) and Slack (real slack_sdk,
loopback stand-in): when the call runs, the time left, and a Veto instead of a Reject."""

from __future__ import annotations

import json

import pytest

from core.identity.users import add_user
from core.store.db import Database
from tests.integration.channels.conftest import Mailbox, SlackAPI, ask, dispatcher

BOB = "bob@example.com"


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    add_user(db, "agent@example.com", role="service")
    add_user(db, BOB, role="approver")


def test_the_announcement_shows_the_time_left_and_offers_a_veto(
    db: Database, smtp: Mailbox, slack_api: SlackAPI
) -> None:
    smtp.start()
    ask(db, channels=["email", "slack"], to=BOB, config={"mode": "veto", "window": "15m"})
    dispatcher(db).dispatch_until_idle(max_seconds=20)

    [mail] = smtp.received()
    assert str(mail["Subject"]) == "Runs unless vetoed: Pay invoice 42"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "(14m left) unless someone vetoes it" in text.get_content()
    assert "Veto: http://gateway.test:8000/" in text.get_content()
    assert ">Veto</a>" in html.get_content()

    [post] = slack_api.payloads("chat.postMessage")
    blocks = json.dumps(post["blocks"])
    assert "(14m left) unless someone vetoes it" in blocks
    labels = [e["text"]["text"] for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert labels[:2] == ["Run now", "Veto"]
    assert slack_api.problems == []
