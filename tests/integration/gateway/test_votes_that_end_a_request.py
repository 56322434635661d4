"""What an approver is told when their approval ends the request rejected.

Threshold 2, two approvers: one approves an edited call, the other the call as
shown. No call has two approvals and nobody else can vote, so the request is
rejected and nothing runs (core.approvals.voting). The Slack reply, the Slack
modal's closing view and the email page must say so, not "You approved ...".
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.channels.slack import ARGUMENT_BLOCK, EDIT_ACTION
from core.identity.users import add_user
from core.store.db import Database
from tests.helpers.approved_calls import FINANCE, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.integration.gateway.loopback import Recorder, loopback_server
from tests.integration.gateway.test_approved_calls_email import CONFIRM, Form
from tests.integration.gateway.test_approved_calls_slack import FINANCE_SLACK, TRIGGER, post, submission

MANAGER = "manager@example.com"
MANAGER_SLACK = "U0MANAGER"
SECRET = "slack-signing-secret-for-tests"


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({FINANCE: FINANCE_SLACK, MANAGER: MANAGER_SLACK}))
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "gateway-tests-link-secret")


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Any:
    with loopback_server() as server:
        monkeypatch.setenv("SLACK_API_URL", f"{server.url}/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        yield server


def press(approval_id: str, action: str, user: str, digest: str, **extra: Any) -> dict[str, Any]:
    value = {"approval_id": approval_id, "level": 0, "digest": digest}
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "x"},
        "actions": [
            {
                "action_id": action,
                "value": json.dumps(value),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
        **extra,
    }


def edit_in_modal(
    client: TestClient, slack: Recorder, approval_id: str, user: str, digest: str, note: str
) -> dict[str, Any]:
    post(client, press(approval_id, EDIT_ACTION, user, digest, trigger_id=TRIGGER))
    opened = [r for r in slack.requests if r[1] == "/api/views.open"]
    view = json.loads(opened[-1][2])["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    submitted = submission(view, {ARGUMENT_BLOCK + "note": note})
    submitted["user"] = {"id": user, "username": "x"}
    submitted["view"]["id"] = f"V{user}"
    return post(client, submitted).json()


def two_approvers(db: Database, calls: Calls) -> tuple[Any, Any]:
    add_user(db, MANAGER, role="approver")
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, requested_from=[FINANCE, MANAGER], approval_threshold=2)
    return registry, approval


def ended_rejected(db: Database, registry: Any, calls: Calls, approval_id: str, told: str) -> None:
    run(db, registry)
    assert calls.of("pay") == []
    assert ApprovalEngine(db).get(approval_id).status == "rejected"
    assert "now rejected" in told and "approved different calls" in told and "nothing runs" in told, told


def test_the_slack_button_says_the_request_is_now_rejected(
    client: TestClient, db: Database, calls: Calls, slack: Recorder
) -> None:
    registry, approval = two_approvers(db, calls)
    digest = approval.proposed_call["digest"]
    edit_in_modal(client, slack, approval.id, FINANCE_SLACK, digest, "edited by finance")
    reply = post(client, press(approval.id, "countersign_approve", MANAGER_SLACK, digest)).json()
    ended_rejected(db, registry, calls, approval.id, reply["text"])


def test_the_slack_modal_says_the_request_is_now_rejected(
    client: TestClient, db: Database, calls: Calls, slack: Recorder
) -> None:
    registry, approval = two_approvers(db, calls)
    digest = approval.proposed_call["digest"]
    post(client, press(approval.id, "countersign_approve", FINANCE_SLACK, digest))
    done = edit_in_modal(client, slack, approval.id, MANAGER_SLACK, digest, "edited by manager")
    ended_rejected(db, registry, calls, approval.id, done["view"]["blocks"][0]["text"]["text"])


def test_the_email_page_says_the_request_is_now_rejected(
    client: TestClient, db: Database, calls: Calls
) -> None:
    registry, approval = two_approvers(db, calls)
    ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "modify", {"arguments": {"note": "edited"}})
    token = make_link_token(approval.id, MANAGER, "approve")
    form = Form(client.get(CONFIRM, params={"token": token}).text).fields
    form["decision"] = "approve"
    done = client.post(CONFIRM, data=form)
    assert done.status_code == 200, done.text
    told = re.search(r"You approved[^<]*", done.text)
    assert told is not None, done.text
    ended_rejected(db, registry, calls, approval.id, told.group(0))
