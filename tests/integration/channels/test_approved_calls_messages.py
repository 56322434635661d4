"""Slack messages and emails show the guarded call, delivered for real.

The dispatcher delivers through the real ``slack_sdk`` client to a loopback
stand-in for Slack and through SMTP to a loopback mail server. The messages
show the call's tool and each argument, the amount in words, the chain,
votes and time left; agent text stays inert. The emailed link, followed to
the confirmation page and answered there, decides what ``pay`` receives.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from gateway.app import create_app
from tests.helpers.approved_calls import (
    FINANCE,
    PROPOSED,
    REQUESTER,
    pay_registry,
    pay_step,
    run,
    waiting,
)
from tests.helpers.engine import Calls
from tests.integration.channels.conftest import Mailbox, SlackAPI, dispatcher
from tests.integration.gateway.test_approved_calls_email import Form

WORDS = "12,500.00 USD (twelve thousand five hundred US dollars)"
FINANCE_SLACK = "U0FINANCE"


def texts(blocks: Any, kind: str) -> list[str]:
    """Every text object of one kind (mrkdwn or plain_text) in a Block Kit structure."""
    found: list[str] = []
    if isinstance(blocks, dict):
        if blocks.get("type") == kind:
            found.append(str(blocks.get("text")))
        for value in blocks.values():
            found += texts(value, kind)
    elif isinstance(blocks, list):
        for item in blocks:
            found += texts(item, kind)
    return found


def action_ids(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


@pytest.fixture
def slack(slack_api: SlackAPI, channel_env: pytest.MonkeyPatch) -> SlackAPI:
    channel_env.setenv("SLACK_USER_MAP", json.dumps({FINANCE: FINANCE_SLACK}))
    return slack_api


def test_the_slack_message_shows_the_call_and_its_update_what_was_released(
    db: Database, calls: Calls, slack: SlackAPI
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", channels=["slack"])
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1
    [post] = slack.payloads("chat.postMessage")
    assert post["channel"] == FINANCE_SLACK and slack.problems == []
    mrkdwn, plain = texts(post["blocks"], "mrkdwn"), texts(post["blocks"], "plain_text")
    assert "*Call:* pay" in mrkdwn
    # The call table: each argument's name (mrkdwn label) beside its value (plain text).
    fields = [f["text"] for b in post["blocks"] for f in b.get("fields") or []]
    for name, value in [("amount", "12500"), ("currency", "USD"), ("note", "invoice 7")]:
        assert fields[fields.index(f"*{name}*") + 1] == value
    assert f"*Amount:* {WORDS}" in mrkdwn
    assert any(
        "Approvers: finance@example.com (waiting) · Votes: 0 of 1 needed · no deadline" in t for t in mrkdwn
    )
    assert "Edit or lower the amount" in plain
    assert action_ids(post) == [
        "countersign_approve",
        "countersign_reject",
        "countersign_edit",
        "countersign_open",
    ]

    ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "approve", {"approved_amount": 9000}, channel="dashboard"
    )
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1
    [update] = slack.payloads("chat.update")
    shown = json.dumps(update["blocks"], ensure_ascii=False)
    assert "9,000.00 USD (nine thousand US dollars)" in shown
    assert "• amount: 12500 → 9000" in shown and "9000\\n(was 12500)" in shown
    assert action_ids(update) == ["countersign_open"]
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "amount": 9000}]


def test_agent_text_in_the_call_is_inert_in_slack(db: Database, calls: Calls, slack: SlackAPI) -> None:
    note = "<!channel> *urgent* _now_ ~x~ `y` <https://evil.example|verify>\n> quoted"
    add_user(db, REQUESTER, role="service")  # who starts a workflow has an account
    workflow = ops.create_workflow(
        db,
        {"name": "pay", "steps": [pay_step(channels=["slack"])]},
        input_data={"amount": 5, "note": "fine"},
        created_by=REQUESTER,
    )
    registry = pay_registry(calls)
    run(db, registry)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow.id)
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1
    ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "modify", {"arguments": {"note": note}}, channel="api"
    )
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1
    [update] = slack.payloads("chat.update")
    mrkdwn = texts(update["blocks"], "mrkdwn")
    changed = [t for t in mrkdwn if "urgent" in t]
    assert changed, mrkdwn
    for text in mrkdwn:  # no link, mention, formatting pair or quote from the agent
        assert "<" not in text and ">" not in text.replace("&gt;", "")
        assert "*urgent*" not in text and "_now_" not in text and "`y`" not in text
        assert "\n&gt;" not in text
    assert "&lt;!channel&gt;" in changed[0]
    # The value itself is plain text, shown exactly.
    assert any(note in t for t in texts(update["blocks"], "plain_text"))
    assert all(
        b.get("text", {}).get("verbatim", True)
        for b in update["blocks"]
        if b.get("text", {}).get("type") == "mrkdwn"
    )


def test_the_email_shows_the_call_and_its_link_decides_what_pay_receives(
    db: Database, calls: Calls, smtp: Mailbox
) -> None:
    smtp.start()
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", channels=["email"])
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1
    [message] = smtp.received()
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content()
    assert "\nCall: pay\n" in text
    for line in ("  amount: 12500\n", "  currency: USD\n", "  note: invoice 7\n"):
        assert line in text
    assert f"Amount: {WORDS}" in text and WORDS in html
    assert "Approvers: finance@example.com (waiting)\nVotes: 0 of 1 needed" in text
    assert "<code>pay</code>" in html and ">invoice 7</td>" in html
    assert "approve a lower amount or change the call's arguments" in text

    approve = re.search(r"^Approve: \S+/email/confirm\?token=(\S+)$", text, flags=re.M)
    assert approve, text
    with TestClient(create_app(db, approver_ui=False)) as client:
        page = client.get("/email/confirm", params={"token": approve.group(1)})
        assert page.status_code == 200 and WORDS in page.text
        form = Form(page.text).fields
        form.update({"approved_amount": "9000", "arg.note": "invoice 7 (partial)", "decision": "approve"})
        done = client.post("/email/confirm", data=form)
        assert done.status_code == 200, done.text
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "amount": 9000, "note": "invoice 7 (partial)"}]
