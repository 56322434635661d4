"""Inbound webhooks: a Standard Webhooks signature or an API token answers an approval."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.runtime import build_runner
from core.store.db import Database
from tests.integration.gateway.conftest import BOSS, waiting_workflow

SECRET = "whsec_" + base64.b64encode(b"inbound-webhook-secret-for-tests!").decode()
URL = "/webhooks/inbound"


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_IN_SECRET", SECRET)


def signed(
    body: str, *, secret: str = SECRET, msg_id: str = "msg_1", when: datetime | None = None
) -> dict[str, str]:
    when = when or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, when, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }


def answer(approval_id: str, **extra: Any) -> str:
    return json.dumps(
        {"approval_id": approval_id, "decision": "approve", "approver": BOSS, "comment": "from CI", **extra}
    )


def test_a_signed_answer_decides(client: TestClient, db: Database) -> None:
    workflow_id, approval = waiting_workflow(db)
    body = answer(approval.id)
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["decided_by"]) == ("approved", BOSS)
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.channel, vote.comment) == ("webhook", "from CI")
    build_runner(db).run_until_idle()
    assert ops.get_workflow(db, workflow_id).status == "completed"
    replay = client.post(URL, content=body, headers=signed(body))
    # The same delivery (its webhook-id) decides once; a replay writes nothing.
    assert replay.status_code == 409 and replay.json()["error"] == "AnswerReplayed"
    assert "already used" in replay.json()["message"]
    assert len(ApprovalEngine(db).responses(approval.id)) == 1


def test_wrong_stale_and_malformed_signatures_are_refused(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(db)
    body = answer(approval.id)
    other_secret = "whsec_" + base64.b64encode(b"another-secret-entirely-000000000").decode()
    attempts = [
        signed(body, secret=other_secret),
        signed(body, when=datetime.now(UTC) - timedelta(minutes=10)),
        {**signed(body), "webhook-signature": "garbage"},
        {**signed(body), "webhook-signature": "v1,not-base64!!"},
        {"webhook-id": "msg_1", "Content-Type": "application/json"},
    ]
    for headers in attempts:
        response = client.post(URL, content=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"] == "Unauthenticated"
    tampered = answer(approval.id, decision="reject")
    assert client.post(URL, content=tampered, headers=signed(body)).status_code == 401
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_an_api_token_answers_as_its_user(
    client: TestClient, db: Database, boss: dict[str, str], other: dict[str, str]
) -> None:
    _, approval = waiting_workflow(db)
    as_someone_else = client.post(
        URL, headers=other, json={"approval_id": approval.id, "decision": "approve", "approver": BOSS}
    )
    assert as_someone_else.status_code == 403
    not_listed = client.post(URL, headers=other, json={"approval_id": approval.id, "decision": "approve"})
    assert not_listed.status_code == 403 and "not an approver" in not_listed.json()["message"]
    assert client.post(URL, json={"approval_id": approval.id, "decision": "approve"}).status_code == 401
    done = client.post(URL, headers=boss, json={"approval_id": approval.id, "decision": "reject"})
    assert done.status_code == 200 and done.json()["status"] == "rejected"


def test_bad_bodies_are_422(client: TestClient, db: Database, boss: dict[str, str]) -> None:
    _, approval = waiting_workflow(db)
    not_json = client.post(URL, headers={**boss, "Content-Type": "application/json"}, content=b"{nope")
    assert not_json.status_code == 422
    missing = client.post(URL, headers=boss, json={"approval_id": approval.id})
    assert missing.status_code == 422 and any(p.startswith("decision") for p in missing.json()["problems"])
    unsigned_without_approver = json.dumps({"approval_id": approval.id, "decision": "approve"})
    response = client.post(URL, content=unsigned_without_approver, headers=signed(unsigned_without_approver))
    assert response.status_code == 422 and "approver" in response.json()["message"]
    unknown = answer("no-such-approval")
    assert client.post(URL, content=unknown, headers=signed(unknown)).status_code == 404


def test_signed_webhooks_are_refused_when_not_configured(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, approval = waiting_workflow(db)
    monkeypatch.delenv("COUNTERSIGN_WEBHOOK_IN_SECRET")
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")
    body = answer(approval.id)
    response = client.post(URL, content=body, headers=signed(body))
    assert response.status_code == 401 and "not configured" in response.json()["message"]
