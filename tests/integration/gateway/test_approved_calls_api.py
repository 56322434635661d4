"""What the tool receives after an answer given over REST or an inbound webhook.

Each case of ``tests.helpers.approved_calls.CASES`` (approve, edited
arguments, a budget approved lower, an edit breaking the tool's schema, an
edit naming another tool) is answered through the channel; the runner then
runs and the recording ``pay`` tool says what it received.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.store.db import Database
from tests.helpers.approved_calls import CASES, FINANCE, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.integration.gateway.conftest import token_for
from tests.integration.gateway.test_webhooks_in import URL, signed


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.gateway.test_webhooks_in import SECRET

    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_IN_SECRET", SECRET)


def _check(
    db: Database,
    calls: Calls,
    registry: Any,
    approval_id: str,
    status: int,
    body: dict[str, Any],
    received: dict[str, Any] | None,
) -> None:
    if received is None:
        assert status == 422, body
        assert body["error"] == "InvalidResponse"
        assert any(p.startswith(("arguments.amount", "tool:")) for p in body["problems"]), body
        assert ApprovalEngine(db).get(approval_id).status == "pending"
    else:
        assert status == 200, body
    run(db, registry)
    assert calls.of("pay") == ([received] if received is not None else [])
    assert calls.of("refund") == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_rest(client: TestClient, db: Database, calls: Calls, case: str) -> None:
    approval_type, decision, data, received = CASES[case]
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    shown = client.get(f"/api/approvals/{approval.id}", headers=token_for(db, FINANCE)).json()
    assert shown["proposed_call"]["arguments"] == {"amount": 12500, "currency": "USD", "note": "invoice 7"}
    assert "amount" in shown["proposed_call"]["input_schema"]["properties"]
    response = client.post(
        f"/api/approvals/{approval.id}/respond",
        json={"decision": decision, "data": data},
        headers=token_for(db, FINANCE),
    )
    _check(db, calls, registry, approval.id, response.status_code, response.json(), received)
    if received is not None:
        released = client.get(f"/api/approvals/{approval.id}", headers=token_for(db, FINANCE)).json()[
            "released_call"
        ]
        assert released["arguments"] == received


@pytest.mark.parametrize("case", sorted(CASES))
def test_inbound_webhook(client: TestClient, db: Database, calls: Calls, case: str) -> None:
    approval_type, decision, data, received = CASES[case]
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    body = json.dumps({"approval_id": approval.id, "decision": decision, "approver": FINANCE, "data": data})
    response = client.post(URL, content=body, headers=signed(body, msg_id=f"msg_{case}"))
    _check(db, calls, registry, approval.id, response.status_code, response.json(), received)
