"""Replays: a captured answer sent again counts as nothing (core.approvals.once).

The request is a budget gate whose two levels both ask BOSS, so a vote from
level 0 that came back at level 1 would be counted as BOSS's second vote and
decide the request. Each channel's answer is captured at level 0 and sent
again, byte for byte, after the request moved on: a Slack click (and a new
click on the same level-0 button), a Slack edit modal, a signed inbound
webhook (same ``webhook-id``, and a new delivery naming level 0), and an
emailed link sent for level 0. Each attempt must be refused with a message
saying why and write no vote; the answer meant for level 1 still decides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.channels.base import ApprovalFacts
from core.channels.email import render_approval_email
from core.channels.notifications import approval_facts
from core.channels.slack import AMOUNT_BLOCK, APPROVE_ACTION, approval_blocks, edit_modal
from core.store.db import Database
from core.store.tables import ApprovalRequest
from gateway.app import create_app
from tests.helpers.browser import answer_form
from tests.integration.gateway.conftest import BOSS
from tests.integration.gateway.test_slack import BOSS_SLACK, signed
from tests.integration.gateway.test_webhooks_in import SECRET as WEBHOOK_SECRET
from tests.integration.gateway.test_webhooks_in import signed as webhook_signed
from tests.reliability.report import AttackTally, record_attacks
from tests.reliability.security_setup import parked, two_level_budget

SLACK = "/slack/interactivity"
INBOUND = "/webhooks/inbound"
CONFIRM = "/email/confirm"
APPROVE_LINK = re.compile(r"/email/confirm\?token=([A-Za-z0-9_.%-]+)")


@pytest.fixture(autouse=True)
def channels_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "slack-signing-secret-for-tests")
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({BOSS: BOSS_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_IN_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "reliability-link-secret-0123456789")
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, approver_ui=False)) as test_client:
        yield test_client


def facts(db: Database, approval_id: str) -> ApprovalFacts:
    with db.read() as session:
        found = approval_facts(session, approval_id)
    assert found is not None
    return found


def approve_value(db: Database, approval_id: str) -> str:
    """The value of the Approve button of the message Slack would show now."""
    blocks = [b.to_dict() for b in approval_blocks(facts(db, approval_id))]
    [value] = [
        e["value"]
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == APPROVE_ACTION
    ]
    return str(value)


def slack_body(value: str, action_ts: str) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": BOSS_SLACK, "username": "boss"},
        "actions": [{"action_id": APPROVE_ACTION, "value": value, "type": "button", "action_ts": action_ts}],
    }
    return urlencode({"payload": json.dumps(payload)})


def state(db: Database, approval_id: str) -> tuple[int, str, int]:
    """(level, status, votes) of the request now."""
    engine = ApprovalEngine(db)
    approval = engine.get(approval_id)
    return approval.level, approval.status, len(engine.responses(approval_id))


def refused(response: Any, status: int, *words: str) -> bool:
    text = response.text
    return response.status_code == status and all(w in text for w in words)


def finish(request: pytest.FixtureRequest, tally: AttackTally) -> None:
    record_attacks(request, tally)
    assert tally.attempts > 0
    assert tally.refused == tally.attempts, tally.failures


def at_level_one(db: Database) -> ApprovalRequest:
    _, approval = parked(db, two_level_budget())
    assert state(db, approval.id) == (0, "pending", 0)
    return approval


def test_a_slack_click_for_level_0_never_counts_at_level_1(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Replays: Slack click for level 0 sent at level 1")
    approval = at_level_one(db)
    level0 = approve_value(db, approval.id)
    assert json.loads(level0)["level"] == 0
    body = slack_body(level0, "1765000000.000100")
    headers = signed(body)
    first = client.post(SLACK, content=body, headers=headers)
    assert first.status_code == 200 and first.json()["text"].startswith("You approved"), first.text
    assert state(db, approval.id) == (1, "pending", 1)
    for copy in range(3):  # the captured request, byte for byte
        again = client.post(SLACK, content=body, headers=headers)
        tally.check(
            again.status_code == 200
            and "already used" in again.json()["text"]
            and state(db, approval.id) == (1, "pending", 1),
            f"replayed click {copy + 1}",
        )
    # A new click on the old message's button (Slack signs it afresh): not for this level.
    fresh = slack_body(level0, "1765000100.000200")
    late = client.post(SLACK, content=fresh, headers=signed(fresh))
    tally.check(
        late.status_code == 200
        and "level 1" in late.json()["text"]
        and "decides nothing" in late.json()["text"]
        and state(db, approval.id) == (1, "pending", 1),
        "level-0 button clicked at level 1",
    )
    # The message level 1 gets decides.
    level1 = slack_body(approve_value(db, approval.id), "1765000200.000300")
    done = client.post(SLACK, content=level1, headers=signed(level1))
    assert done.json()["text"].startswith("You approved"), done.text
    assert state(db, approval.id) == (1, "approved", 2)
    finish(request, tally)


def test_a_slack_modal_submitted_again_never_counts_at_level_1(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Replays: Slack edit modal submitted again")
    approval = at_level_one(db)
    view = facts(db, approval.id).view
    assert view is not None
    modal = edit_modal(approval.id, view, approval.title, level=0)
    values = {AMOUNT_BLOCK: {"value": {"type": "number_input", "value": "400"}}}
    payload: dict[str, Any] = {
        "type": "view_submission",
        "user": {"id": BOSS_SLACK},
        "view": {**modal, "id": "V0REPLAY", "state": {"values": values}},
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed(body)
    first = client.post(SLACK, content=body, headers=headers)
    assert first.json()["response_action"] == "update", first.text
    assert state(db, approval.id) == (1, "pending", 1)
    for copy in range(2):
        again = client.post(SLACK, content=body, headers=headers).json()
        tally.check(
            again.get("response_action") == "errors"
            and "already used" in " ".join(again["errors"].values())
            and state(db, approval.id) == (1, "pending", 1),
            f"replayed modal {copy + 1}",
        )
    # The same modal, as if opened again at level 0 (another view id): not for this level.
    other = {**payload, "view": {**payload["view"], "id": "V0OTHER"}}
    body = urlencode({"payload": json.dumps(other)})
    late = client.post(SLACK, content=body, headers=signed(body)).json()
    tally.check(
        late.get("response_action") == "errors"
        and "decides nothing" in " ".join(late["errors"].values())
        and state(db, approval.id) == (1, "pending", 1),
        "level-0 modal at level 1",
    )
    finish(request, tally)


def test_a_webhook_delivery_for_level_0_never_counts_at_level_1(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Replays: inbound webhook delivery (same webhook-id)")
    approval = at_level_one(db)

    def delivery(msg_id: str, **extra: Any) -> tuple[str, dict[str, str]]:
        body = json.dumps({"approval_id": approval.id, "decision": "approve", "approver": BOSS, **extra})
        return body, webhook_signed(body, msg_id=msg_id)

    body, headers = delivery("msg_level0")
    first = client.post(INBOUND, content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert state(db, approval.id) == (1, "pending", 1)
    for copy in range(3):
        again = client.post(INBOUND, content=body, headers=headers)
        tally.check(
            refused(again, 409, "AnswerReplayed", "already used")
            and state(db, approval.id) == (1, "pending", 1),
            f"replayed delivery {copy + 1}",
        )
    body, headers = delivery("msg_level0_again", level=0)
    late = client.post(INBOUND, content=body, headers=headers)
    tally.check(
        refused(late, 409, "AnswerOutdated", "level 1") and state(db, approval.id) == (1, "pending", 1),
        "a delivery naming level 0",
    )
    body, headers = delivery("msg_level1", level=1)
    assert client.post(INBOUND, content=body, headers=headers).status_code == 200
    assert state(db, approval.id) == (1, "approved", 2)
    finish(request, tally)


def test_an_email_link_for_level_0_never_counts_at_level_1(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Replays: emailed link for level 0 used at level 1")
    approval = at_level_one(db)
    email = render_approval_email(facts(db, approval.id), BOSS, "approval.requested")
    token = unquote(APPROVE_LINK.findall(email["text"])[0])
    # Level 0 is answered elsewhere; the link stays unspent in the mailbox.
    ApprovalEngine(db).respond_to_approval(approval.id, BOSS, "approve", channel="api")
    assert state(db, approval.id) == (1, "pending", 1)
    shown = client.get(CONFIRM, params={"token": token})
    tally.check(
        refused(shown, 409, "out of date") and "<form" not in shown.text, "the level-0 link's page at level 1"
    )
    for copy in range(2):
        late = client.post(CONFIRM, data=answer_form(token))
        tally.check(
            refused(late, 409, "decides nothing") and state(db, approval.id) == (1, "pending", 1),
            f"level-0 link posted {copy + 1}",
        )
    finish(request, tally)
