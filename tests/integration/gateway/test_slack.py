"""Slack interactivity and /approvals, signed the way Slack signs; forged and stale refused."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.ops.audit_export import audit_record
from core.runtime import build_runner
from core.store.db import Database
from gateway.slack import handle_socket_request
from tests.integration.gateway.conftest import BOSS, waiting_workflow
from tests.integration.gateway.loopback import loopback_server

SECRET = "slack-signing-secret-for-tests"
BOSS_SLACK = "U0BOSS"


@pytest.fixture(autouse=True)
def slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    # The sending side's direction (email -> Slack id); the gateway reads both.
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({BOSS: BOSS_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


def signed(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


_CLICKS = itertools.count()


def button(approval_id: str, level: int = 0, **digest: str | None) -> str:
    """A button's value as Countersign draws it: the request, its level (and the call's
    digest, when given)."""
    return json.dumps({"approval_id": approval_id, "level": level, **digest})


def click(
    approval_id: str,
    action: str = "countersign_approve",
    user: str = BOSS_SLACK,
    response_url: str | None = None,
    *,
    level: int = 0,
) -> dict[str, Any]:
    """A new click (its own action_ts) on a button sent for ``level`` of the request."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": "boss"},
        "actions": [
            {
                "action_id": action,
                "value": button(approval_id, level),
                "type": "button",
                "action_ts": f"{time.time():.6f}.{next(_CLICKS)}",
            }
        ],
    }
    if response_url:
        payload["response_url"] = response_url
    return payload


def post_click(client: TestClient, payload: dict[str, Any], **sign: Any):  # type: ignore[no-untyped-def]
    body = urlencode({"payload": json.dumps(payload)})
    return client.post("/slack/interactivity", content=body, headers=signed(body, **sign))


def test_a_signed_click_approves_and_the_workflow_moves_on(client: TestClient, db: Database) -> None:
    workflow_id, approval = waiting_workflow(db)
    with loopback_server() as slack:
        response = post_click(client, click(approval.id, response_url=f"{slack.url}/actions/T1/abc"))
        assert response.status_code == 200, response.text
        assert response.json()["text"].startswith("You approved")
        # The ephemeral reply went to the interaction's response_url.
        [(method, path, body)] = slack.requests
        assert (method, path) == ("POST", "/actions/T1/abc")
        assert json.loads(body)["response_type"] == "ephemeral"
    decided = ApprovalEngine(db).get(approval.id)
    assert (decided.status, decided.decided_by) == ("approved", BOSS)
    assert [v.channel for v in ApprovalEngine(db).responses(approval.id)] == ["slack"]
    build_runner(db).run_until_idle()
    assert ops.get_workflow(db, workflow_id).status == "completed"
    # The auditor's record names the Slack user who clicked (core.identity.verified).
    [vote] = audit_record(db, "system", workflow_id).requests[0].votes
    assert vote.identity_details is not None
    assert vote.identity_details["slack_user_id"] == BOSS_SLACK
    assert f"Slack user id {BOSS_SLACK}" in vote.identity


def test_reject_button_and_a_second_click(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(db)
    rejected = post_click(client, click(approval.id, "countersign_reject")).json()
    assert rejected["text"].startswith("You rejected")
    again = post_click(client, click(approval.id)).json()
    assert "already rejected" in again["text"]
    assert ApprovalEngine(db).get(approval.id).status == "rejected"


def test_forged_stale_and_unsigned_requests_are_refused(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(db)
    forged = post_click(client, click(approval.id), secret="not-the-secret")
    stale = post_click(client, click(approval.id), timestamp=int(time.time()) - 6 * 60)
    body = urlencode({"payload": json.dumps(click(approval.id))})
    unsigned = client.post(
        "/slack/interactivity", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    garbage_ts = client.post(
        "/slack/interactivity", content=body, headers={**signed(body), "X-Slack-Request-Timestamp": "soon"}
    )
    for response in (forged, stale, unsigned, garbage_ts):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "Unauthenticated"
    # A signature over another body does not carry over.
    other_body = urlencode({"payload": json.dumps(click(approval.id, "countersign_reject"))})
    swapped = client.post("/slack/interactivity", content=other_body, headers=signed(body))
    assert swapped.status_code == 401
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_unmapped_and_unlisted_slack_users_are_refused(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, approval = waiting_workflow(db)
    unknown = post_click(client, click(approval.id, user="U0NOBODY")).json()
    assert "not linked" in unknown["text"]
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({"U0EVE": "eve@example.com"}))
    unlisted = post_click(client, click(approval.id, user="U0EVE")).json()
    assert "eve@example.com is not an approver" in unlisted["text"]
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_users_info_maps_an_unlisted_slack_user(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, approval = waiting_workflow(db)
    monkeypatch.setenv("SLACK_USER_MAP", "{}")
    with loopback_server() as slack:
        slack.answers["/api/users.info"] = {"ok": True, "user": {"id": "U0B", "profile": {"email": BOSS}}}
        monkeypatch.setenv("SLACK_API_URL", f"{slack.url}/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        assert post_click(client, click(approval.id, user="U0B")).json()["text"].startswith("You approved")
        method, path, body = slack.requests[0]
        assert path == "/api/users.info" and parse_qs(body.decode())["user"] == ["U0B"]


def test_form_approval_click_points_to_the_dashboard(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(
        db, {"type": "form", "form_fields": [{"name": "verdict", "type": "string", "required": True}]}
    )
    text = post_click(client, click(approval.id)).json()["text"]
    assert "verdict" in text and approval.id in text
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_approvals_command_lists_my_pending_requests(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(db)
    body = urlencode({"command": "/approvals", "user_id": BOSS_SLACK, "text": ""})
    listed = client.post("/slack/commands", content=body, headers=signed(body))
    assert listed.status_code == 200, listed.text
    answer = listed.json()
    assert answer["response_type"] == "ephemeral" and answer["text"].startswith("1 approval")
    section = answer["blocks"][0]
    # Slack mrkdwn is escaped: no injected links or mentions from a title.
    assert "Ship release &lt;b&gt;1.2&lt;/b&gt;" in section["text"]["text"]
    assert approval.id in section["accessory"]["url"]
    forged = client.post("/slack/commands", content=body, headers=signed(body, secret="x"))
    assert forged.status_code == 401
    ApprovalEngine(db).respond_to_approval(approval.id, BOSS, "approve")
    empty = client.post("/slack/commands", content=body, headers=signed(body)).json()
    assert empty["text"] == "Nothing is waiting for you."


def test_socket_mode_envelopes_use_the_same_handlers(db: Database) -> None:
    # The Socket Mode connection needs Slack itself; its envelopes go through
    # this function, tested here without a socket.
    _, approval = waiting_workflow(db)
    listed = handle_socket_request(db, "slash_commands", {"command": "/approvals", "user_id": BOSS_SLACK})
    assert listed is not None and approval.id in json.dumps(listed)
    assert handle_socket_request(db, "interactive", click(approval.id)) is None
    assert ApprovalEngine(db).get(approval.id).status == "approved"
    assert handle_socket_request(db, "events_api", {}) is None
