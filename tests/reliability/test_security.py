"""Attacks against the real gateway (in process, FastAPI TestClient) and core, on
SQLite and PostgreSQL; each attack class counts its attempts and how many were
refused (or came out inert) and adds a row to the security table printed at
the end of the run. Every attempt must be refused and leave no vote behind.

Classes: forged, stale, tampered and replayed Slack requests; tampered,
expired, forged, reused and misdirected email link tokens; inbound webhooks
with wrong, stale or tampered signatures and replays; an approver not asked;
a requester approving their own request. Agent-written HTML and script
(``test_security_markup.py``) and SQL metacharacters in filters
(``test_security_filters.py``) have their own files.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.base.errors import NotAuthorized
from core.store.db import Database
from gateway.approver_answers import answer as gradio_answer
from gateway.slack import handle_interaction
from tests.helpers.browser import answer_form
from tests.integration.gateway.conftest import BOSS, OTHER, REQUESTER, token_for, waiting_workflow
from tests.integration.gateway.test_slack import BOSS_SLACK, click, signed
from tests.integration.gateway.test_webhooks_in import SECRET as WEBHOOK_SECRET
from tests.integration.gateway.test_webhooks_in import answer as webhook_answer
from tests.integration.gateway.test_webhooks_in import signed as webhook_signed
from tests.reliability.report import AttackTally, record_attacks

SLACK_SECRET = "slack-signing-secret-for-tests"
LINK_SECRET = "reliability-link-secret-0123456789"
MALLORY = "mallory@example.com"
MALLORY_SLACK = "U0MALLORY"
REQUESTER_SLACK = "U0REQUESTER"
CONFIRM = "/email/confirm"
INBOUND = "/webhooks/inbound"


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SLACK_SECRET)
    monkeypatch.setenv(
        "SLACK_USER_MAP", json.dumps({BOSS: BOSS_SLACK, MALLORY: MALLORY_SLACK, REQUESTER: REQUESTER_SLACK})
    )
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", LINK_SECRET)
    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_IN_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")


def votes(db: Database, approval_id: str) -> int:
    return len(ApprovalEngine(db).responses(approval_id))


def refused(response: Response, *statuses: int) -> bool:
    """Refused with one of ``statuses`` and a message saying why."""
    if response.status_code not in statuses:
        return False
    if "json" not in response.headers.get("content-type", ""):
        return bool(response.text.strip())
    body = response.json()
    return bool(body.get("message") or body.get("text"))


def finish(request: pytest.FixtureRequest, tally: AttackTally) -> None:
    record_attacks(request, tally)
    assert tally.attempts > 0
    assert tally.refused == tally.attempts, tally.failures


def test_slack_forged_stale_tampered_and_replayed_requests(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Slack: forged, stale, tampered, replayed requests")
    _, approval = waiting_workflow(db)
    body = urlencode({"payload": json.dumps(click(approval.id))})
    now = int(time.time())
    rejecting = urlencode({"payload": json.dumps(click(approval.id, "countersign_reject"))})
    attempts: dict[str, tuple[str, dict[str, str]]] = {
        "signed with another secret": (body, signed(body, secret="not-the-signing-secret")),
        "no signature at all": (body, {"Content-Type": "application/x-www-form-urlencoded"}),
        "stale: signed ten minutes ago": (body, signed(body, timestamp=now - 600)),
        "signed ten minutes ahead": (body, signed(body, timestamp=now + 600)),
        "body changed after signing": (rejecting, signed(body)),
        "timestamp not a number": (body, {**signed(body), "X-Slack-Request-Timestamp": "soon"}),
        "signature not hex": (body, {**signed(body), "X-Slack-Signature": "v0=zz"}),
    }
    for what, (content, headers) in attempts.items():
        response = client.post("/slack/interactivity", content=content, headers=headers)
        tally.check(refused(response, 401) and votes(db, approval.id) == 0, what)
    command = urlencode({"user_id": BOSS_SLACK, "command": "/approvals", "text": ""})
    response = client.post(
        "/slack/commands", content=command, headers=signed(command, secret="not-the-signing-secret")
    )
    tally.check(refused(response, 401), "forged /approvals command")

    # A genuine click, captured and sent again byte for byte: decides nothing more.
    headers = signed(body)
    first = client.post("/slack/interactivity", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["text"].startswith("You approved"), first.text
    for copy in range(3):
        again = client.post("/slack/interactivity", content=body, headers=headers)
        tally.check(
            again.status_code == 200
            and "already used" in again.json()["text"]
            and votes(db, approval.id) == 1,
            f"replayed click {copy + 1}",
        )
    finish(request, tally)


def test_email_links_tampered_expired_forged_reused_and_misdirected(
    request: pytest.FixtureRequest, db: Database, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tally = AttackTally("Email links: tampered, expired, forged, reused, misdirected")
    _, approval = waiting_workflow(db)
    good = make_link_token(approval.id, BOSS, "approve")
    middle = len(good) // 2
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "an-attacker-guess-of-the-secret")
    forged = make_link_token(approval.id, BOSS, "approve")
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", LINK_SECRET)
    attempts: dict[str, dict[str, str]] = {
        "one character changed": {
            "token": good[:middle] + ("A" if good[middle] != "A" else "B") + good[middle + 1 :]
        },
        "signature cut off": {"token": good.rsplit(".", 1)[0]},
        "signed with another secret": {"token": forged},
        "expired": {"token": make_link_token(approval.id, BOSS, "approve", max_age=0)},
        "approve-only link used to reject": {"token": good, "decision": "reject"},
        "link of someone not asked": {"token": make_link_token(approval.id, MALLORY, "approve")},
        "not a token": {"token": "' OR 1=1 --"},
        "empty token": {"token": ""},
    }
    # Links we really signed (still fresh) get a page on GET, which never decides; the rest not even that.
    genuine = {good, attempts["link of someone not asked"]["token"]}
    for what, form in attempts.items():
        shown = client.get(CONFIRM, params={"token": form["token"]})
        answered = client.post(CONFIRM, data={**answer_form(form["token"]), **form})
        ok = refused(answered, 400, 403, 410, 422) and votes(db, approval.id) == 0
        tally.check(ok and (form["token"] in genuine or shown.status_code >= 400), what)

    first = client.post(CONFIRM, data=answer_form(good))
    assert first.status_code == 200 and "You approved" in first.text, first.text
    for copy in range(3):
        reused = client.post(CONFIRM, data=answer_form(good))
        tally.check(
            refused(reused, 410) and "already been used" in reused.text and votes(db, approval.id) == 1,
            f"reused link {copy + 1}",
        )
    finish(request, tally)


def other_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(b"a-secret-the-attacker-made-up!!").decode()


def test_inbound_webhooks_with_wrong_stale_or_tampered_signatures_and_replays(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Inbound webhooks: wrong, stale, tampered signatures, replays")
    _, approval = waiting_workflow(db)
    body = webhook_answer(approval.id)
    then = datetime.now(UTC) - timedelta(minutes=10)
    attempts: dict[str, tuple[str, dict[str, str]]] = {
        "signed with another secret": (body, webhook_signed(body, secret=other_webhook_secret())),
        "stale: signed ten minutes ago": (body, webhook_signed(body, when=then)),
        "signed ten minutes ahead": (body, webhook_signed(body, when=then + timedelta(minutes=20))),
        "body changed after signing": (webhook_answer(approval.id, decision="reject"), webhook_signed(body)),
        "signature header missing": (
            body,
            {k: v for k, v in webhook_signed(body).items() if k != "webhook-signature"},
        ),
        "unsigned, no token": (body, {"Content-Type": "application/json"}),
        "made-up bearer token": (
            body,
            {"Content-Type": "application/json", "Authorization": "Bearer cs_not_a_real_token"},
        ),
        "signature of another message id": (body, {**webhook_signed(body), "webhook-id": "msg_other"}),
    }
    for what, (content, headers) in attempts.items():
        response = client.post(INBOUND, content=content, headers=headers)
        tally.check(refused(response, 401) and votes(db, approval.id) == 0, what)

    headers = webhook_signed(body, msg_id="msg_once")
    first = client.post(INBOUND, content=body, headers=headers)
    assert first.status_code == 200, first.text
    for copy in range(3):
        replay = client.post(INBOUND, content=body, headers=headers)
        tally.check(refused(replay, 409) and votes(db, approval.id) == 1, f"replayed webhook {copy + 1}")
    finish(request, tally)


def every_channel_as(
    db: Database, client: TestClient, approval_id: str, who: str, slack_id: str
) -> dict[str, bool]:
    """``who`` tries to approve through every channel; whether each was refused."""
    results: dict[str, bool] = {}
    rest = client.post(
        f"/api/approvals/{approval_id}/respond", json={"decision": "approve"}, headers=token_for(db, who)
    )
    results["REST"] = refused(rest, 403)
    try:
        ApprovalEngine(db).respond_to_approval(approval_id, who, "approve", channel="api")
        results["core API"] = False
    except NotAuthorized as exc:
        results["core API"] = bool(str(exc))
    link = client.post(CONFIRM, data=answer_form(make_link_token(approval_id, who, "approve")))
    results["email link"] = refused(link, 403)
    reply = handle_interaction(db, click(approval_id, user=slack_id))
    results["Slack button"] = not reply.ok and "not" in reply.text
    body = webhook_answer(approval_id, approver=who)
    results["signed webhook"] = refused(client.post(INBOUND, content=body, headers=webhook_signed(body)), 403)
    token_body = json.dumps({"approval_id": approval_id, "decision": "approve"})
    token_hook = client.post(
        INBOUND, content=token_body, headers={**token_for(db, who), "Content-Type": "application/json"}
    )
    results["webhook with API token"] = refused(token_hook, 403)
    results["Gradio page"] = gradio_answer(db, who, approval_id, "Approve", "{}", "").startswith("**Refused")
    return results


def test_an_approver_not_asked_is_refused_everywhere(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Approver not asked")
    _, approval = waiting_workflow(db)
    for who, slack_id in ((MALLORY, MALLORY_SLACK), (OTHER, "U0UNMAPPED")):
        for channel, was_refused in every_channel_as(db, client, approval.id, who, slack_id).items():
            tally.check(was_refused and votes(db, approval.id) == 0, f"{who} via {channel}")
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    finish(request, tally)


def test_a_requester_cannot_approve_their_own_request(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Requester approving their own request")
    # The requester is even among the approvers: only the self-approval rule stands in the way.
    _, approval = waiting_workflow(db, {"requested_from": [BOSS, REQUESTER]})
    assert approval.requested_by == REQUESTER
    for channel, was_refused in every_channel_as(db, client, approval.id, REQUESTER, REQUESTER_SLACK).items():
        tally.check(was_refused and votes(db, approval.id) == 0, f"requester via {channel}")
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    finish(request, tally)
