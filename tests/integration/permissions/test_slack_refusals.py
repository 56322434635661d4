"""A disabled or removed account acts nowhere in Slack, on SQLite and PostgreSQL.

``/approvals`` listed a disabled account's pending requests (title, type, due date,
link) while its click was refused; now the command, the Edit button and the buttons
are refused alike before anything is shown or done, with the click's message and
``permission.refused`` event (gateway.slack_users.email_of asks core's rule).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.channels.slack import EDIT_ACTION
from core.identity.account_state import disable_user, enable_user
from core.identity.permissions import REFUSED_EVENT
from core.identity.users import add_user, remove_user
from core.store.db import Database
from core.store.tables import WorkflowEvent
from gateway.app import create_app
from tests.integration.gateway.conftest import BOSS, waiting_workflow
from tests.integration.permissions.test_disabled_accounts import (  # noqa: F401  (its autouse fixture)
    BOSS_SLACK,
    SIGNING_SECRET,
    channels_env,
    slack_click,
)

ADMIN = "admin@slack-refusals.test"
TITLE = "Approve step 'approve'"


def signed_post(client: TestClient, path: str, form: dict[str, str]) -> dict[str, Any]:
    body = urlencode(form)
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    response = client.post(
        path,
        content=body,
        headers={
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": str(signature),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def approvals_command(client: TestClient, user_id: str = BOSS_SLACK) -> dict[str, Any]:
    """``/approvals`` as the Slack user ``user_id``: the whole reply."""
    return signed_post(client, "/slack/commands", {"command": "/approvals", "user_id": user_id})


def edit_click(client: TestClient, approval_id: str) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": BOSS_SLACK},
        "trigger_id": "T-1",
        "actions": [
            {
                "action_id": EDIT_ACTION,
                "type": "button",
                "value": json.dumps({"approval_id": approval_id, "level": 0}),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    reply = signed_post(client, "/slack/interactivity", {"payload": json.dumps(payload)})
    return str(reply["text"]).replace("\u200b", "")


def plain(reply: dict[str, Any]) -> str:
    return str(reply["text"]).replace("\u200b", "")


def refused(db: Database) -> list[WorkflowEvent]:
    with db.read() as session:
        query = select(WorkflowEvent).where(WorkflowEvent.event_type == REFUSED_EVENT)
        return list(session.scalars(query.order_by(WorkflowEvent.id)).all())


def test_approvals_lists_nothing_for_a_disabled_account(db: Database) -> None:
    add_user(db, ADMIN, role="admin")
    add_user(db, BOSS, role="approver")
    _, approval = waiting_workflow(db)  # asks BOSS
    message = f"{BOSS} may not approvals:answer (account disabled)"
    with TestClient(create_app(db)) as client:
        listed = approvals_command(client)
        assert plain(listed) == "1 approval(s) waiting for you." and listed["blocks"]

        disable_user(db, BOSS, actor=ADMIN)

        reply = approvals_command(client)
        assert plain(reply) == message  # the click's own words
        assert "blocks" not in reply and TITLE not in json.dumps(reply)
        assert plain({"text": slack_click(client, approval.id)}) == message
        assert edit_click(client, approval.id) == message  # no modal with the call either
        events = refused(db)
        assert [(e.actor, e.data["action"], e.data["reason"]) for e in events] == [
            (BOSS, "approvals:answer", "account disabled")
        ] * 3
        # The click's names its request, as the vote's refusal did.
        assert [e.approval_id for e in events] == [None, approval.id, None]
        assert ApprovalEngine(db).responses(approval.id) == []

        enable_user(db, BOSS, actor=ADMIN)
        assert plain(approvals_command(client)) == "1 approval(s) waiting for you."


def test_approvals_lists_nothing_for_a_removed_account(db: Database) -> None:
    add_user(db, ADMIN, role="admin")
    add_user(db, BOSS, role="approver")
    waiting_workflow(db)
    with TestClient(create_app(db)) as client:
        remove_user(db, BOSS, actor=ADMIN)
        reply = approvals_command(client)
    assert plain(reply) == f"{BOSS} may not approvals:answer (account removed)"
    assert "blocks" not in reply
    assert [(e.actor, e.data["reason"]) for e in refused(db)] == [(BOSS, "account removed")]


def test_approvals_still_lists_for_a_person_without_an_account(db: Database) -> None:
    """An email approver linked in Slack may answer what names them: listed as before."""
    waiting_workflow(db)  # asks BOSS, who has no account here
    with TestClient(create_app(db)) as client:
        assert plain(approvals_command(client)) == "1 approval(s) waiting for you."
        assert plain(approvals_command(client, "U0NOBODY")).startswith("Your Slack account (U0NOBODY)")
    assert refused(db) == []
