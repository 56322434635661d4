"""The permission matrix's channel columns: answering an approval through a
signed Slack click, an email link's confirmation page and the Gradio approver
UI, for each role, on SQLite.

Every request is a held ``pay`` call naming all six people (admin,
approver, viewer, service account, a disabled approver, an email without an
account). An allowed
answer records a vote on that channel and, once the runner runs, the tool
receives the call as proposed; a refused one gives the message REST and the
dashboard give (``<email> may not approvals:answer (role <role>)``), is
written to the audit trail, and leaves the request pending and the tool
never called. Gradio signs people in with a password, so a person without
an account, or whose account is disabled, cannot reach it at all (its API
answers 401).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from slack_sdk.signature import SignatureVerifier

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.engine import workflows as ops
from core.engine.runner import Runner
from core.engine.tools import ToolRegistry
from core.identity.permissions import Action
from core.identity.users import add_user
from core.store.db import Database
from gateway.app import create_app
from tests.helpers.approved_calls import pay_registry
from tests.helpers.browser import form_csrf, sign_in
from tests.helpers.engine import Calls
from tests.integration.permissions.test_matrix import refusals_of
from tests.integration.permissions.world import (
    EMAILS,
    EXPECTED,
    REQUESTER,
    ROLE_DESCRIPTIONS,
    N,
    Y,
    add_accounts,
    refusal,
)
from tests.reliability.report import render, show

pytestmark = pytest.mark.timeout(600)

ANSWER = Action.APPROVALS_ANSWER
CHANNEL_ROLES = ("admin", "approver", "viewer", "service", "disabled", "unknown")
SIGNING_SECRET = "matrix-slack-signing-secret"
SLACK_IDS = {role: f"U0{role.upper()}" for role in CHANNEL_ROLES}
PASSWORD = "matrix-pass"  # world.add_accounts' password
NO_SIGN_IN = "no sign-in"
NO_GRADIO = ("disabled", "unknown")  # cannot sign in: disabled, or no account at all
PROPOSED = {"amount": 5, "currency": "USD"}


@pytest.fixture(autouse=True)
def channels_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({EMAILS[r]: SLACK_IDS[r] for r in CHANNEL_ROLES}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "matrix-link-secret")


class HeldCalls:
    """Fresh held ``pay`` calls (one note each), and what the tool received for each."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.calls = Calls()
        self.registry: ToolRegistry = pay_registry(self.calls)
        self.count = 0

    def run(self) -> None:
        Runner(self.db, registry=self.registry, lease_seconds=10).run_until_idle(max_seconds=60)

    def waiting(self, requested_from: list[str] | None = None) -> tuple[str, str, str]:
        """(workflow id, approval id, the call's note); everyone asked by default."""
        self.count += 1
        note = f"matrix call {self.count}"
        step = {
            "name": "pay",
            "type": "tool",
            "tool": "pay",
            "requires_approval": True,
            "args": {**PROPOSED, "note": note},
            "approval_config": {
                "title": "Matrix pay",
                "channels": [],
                "requested_from": requested_from or [EMAILS[r] for r in CHANNEL_ROLES],
            },
        }
        workflow_id = ops.create_workflow(
            self.db, {"name": "Matrix pay", "steps": [step]}, created_by=REQUESTER
        ).id
        self.run()
        [approval] = ApprovalEngine(self.db).list_pending_approvals(workflow_id=workflow_id)
        return workflow_id, approval.id, note

    def received(self, note: str) -> list[dict[str, Any]]:
        return [c for c in self.calls.of("pay") if c["note"] == note]


# -- how each interface answers: (allowed?, the message shown) -----------------------


def _plain(text: str) -> str:
    """A reply as a person reads it: no escaping backslashes or invisible joiners."""
    for mark in ("\\", "\u200b", "\u2060"):
        text = text.replace(mark, "")
    return text


def slack_answer(client: TestClient, role: str, approval_id: str) -> tuple[bool, str]:
    payload = {
        "type": "block_actions",
        "user": {"id": SLACK_IDS[role], "username": role},
        "actions": [
            {
                "action_id": "countersign_approve",
                "type": "button",
                "value": json.dumps({"approval_id": approval_id, "level": 0}),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    response = client.post(
        "/slack/interactivity",
        content=body,
        headers={
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200, response.text
    text = _plain(response.json()["text"])
    return text.startswith("You approved"), text


def email_answer(client: TestClient, role: str, approval_id: str) -> tuple[bool, str]:
    token = make_link_token(approval_id, EMAILS[role], "approve", level=0)
    page = client.get("/email/confirm", params={"token": token})
    assert page.status_code == 200, page.text  # showing the request decides nothing
    done = client.post(
        "/email/confirm", data={"token": token, "decision": "approve", "csrf_token": form_csrf(page.text)}
    )
    text = done.text.replace("&#39;", "'").replace("&#34;", '"')
    return done.status_code == 200 and "You approved" in text, text


def gradio_answer(clients: dict[str, TestClient], role: str, approval_id: str) -> tuple[bool, str]:
    response = clients[role].post(
        "/approve/gradio_api/run/approve", json={"data": [approval_id, "{}", "", "", None]}
    )
    if response.status_code == 401:
        return False, NO_SIGN_IN
    assert response.status_code == 200, response.text
    text = _plain(response.json()["data"][0])
    return text.startswith("**Recorded.**"), text


@pytest.fixture
def gateway(sqlite_db: Database) -> Iterator[TestClient]:
    add_accounts(sqlite_db)
    with TestClient(create_app(sqlite_db)) as client:
        yield client


def test_answering_through_slack_email_links_and_gradio(
    sqlite_db: Database, gateway: TestClient, request: pytest.FixtureRequest
) -> None:
    db = sqlite_db
    held = HeldCalls(db)
    # One signed-in browser per person (Gradio); a person without an account cannot sign in.
    clients: dict[str, TestClient] = {}
    for role in CHANNEL_ROLES:
        client = TestClient(gateway.app)
        signed = sign_in(client, EMAILS[role], PASSWORD, "/approve/")
        assert (signed.status_code == 401) == (role in NO_GRADIO), signed.text
        clients[role] = client
    interfaces: dict[str, Callable[[str, str], tuple[bool, str]]] = {
        "Slack click (signed)": lambda role, a: slack_answer(gateway, role, a),
        "email link page": lambda role, a: email_answer(gateway, role, a),
        "Gradio /approve": lambda role, a: gradio_answer(clients, role, a),
    }
    channel = {"Slack click (signed)": "slack", "email link page": "email", "Gradio /approve": "gradio"}
    results: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    for interface, answer in interfaces.items():
        for role in CHANNEL_ROLES:
            workflow_id, approval_id, note = held.waiting()
            before = refusals_of(db, EMAILS[role], ANSWER)
            ok, message = answer(role, approval_id)
            expected = EXPECTED[ANSWER][role]
            if interface.startswith("Gradio") and role in NO_GRADIO:
                expected = NO_SIGN_IN  # Gradio needs an account that may sign in
            got = Y if ok else (NO_SIGN_IN if message == NO_SIGN_IN else N)
            results[interface, role] = got
            cell = f"{interface} as {role}"
            if got != expected:
                problems.append(f"{cell}: {got} {message[:300]!r}, expected {expected}")
                continue
            held.run()
            approval = ApprovalEngine(db).get(approval_id)
            votes = ApprovalEngine(db).responses(approval_id)
            if got == Y:
                if [(v.approver, v.channel) for v in votes] != [(EMAILS[role], channel[interface])]:
                    problems.append(f"{cell}: votes {[(v.approver, v.channel) for v in votes]}")
                if held.received(note) != [{**PROPOSED, "note": note}]:
                    problems.append(f"{cell}: the tool received {held.received(note)}")
                if ops.get_workflow(db, workflow_id).status != "completed":
                    problems.append(f"{cell}: workflow {ops.get_workflow(db, workflow_id).status}")
                continue
            if got == N:
                if refusal(role, ANSWER) not in message:
                    problems.append(f"{cell}: message {message[:300]!r}, expected {refusal(role, ANSWER)!r}")
                if refusals_of(db, EMAILS[role], ANSWER) != before + 1:
                    problems.append(f"{cell}: no permission.refused event")
            if approval.status != "pending" or votes or held.received(note):
                problems.append(
                    f"{cell}: request {approval.status}, {len(votes)} votes, tool "
                    f"received {held.received(note)}"
                )
    for client in clients.values():
        client.close()
    rows = [(interface, *(results[interface, r] for r in CHANNEL_ROLES)) for interface in interfaces]
    show(
        request,
        render(
            "Permissions, approvals:answer by channel (SQLite): role x interface",
            ["interface", *(ROLE_DESCRIPTIONS[r] for r in CHANNEL_ROLES)],
            rows,
        ),
    )
    assert not problems, "\n".join(problems)


def test_a_viewer_named_through_a_group_is_refused_on_every_channel(
    sqlite_db: Database, gateway: TestClient
) -> None:
    """A group naming a viewer does not make the viewer an approver on any channel."""
    db = sqlite_db
    add_user(db, EMAILS["viewer"], role="viewer", password=PASSWORD, groups=["matrix-group"])
    held = HeldCalls(db)
    client = TestClient(gateway.app)
    sign_in(client, EMAILS["viewer"], PASSWORD, "/approve/")
    for answer in (
        lambda a: slack_answer(gateway, "viewer", a),
        lambda a: email_answer(gateway, "viewer", a),
        lambda a: gradio_answer({"viewer": client}, "viewer", a),
    ):
        _, approval_id, note = held.waiting(["matrix-group", EMAILS["approver"]])
        ok, message = answer(approval_id)
        assert not ok and refusal("viewer", ANSWER) in message, message
        held.run()
        assert ApprovalEngine(db).get(approval_id).status == "pending"
        assert held.received(note) == []
    client.close()
