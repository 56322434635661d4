"""Standing rules over REST (/api/rules: list, create, change, revoke), on SQLite and
PostgreSQL: what a rule made here releases is what the tool receives, and only for
as long as it lives; who may make one, and what a hostile body gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import WorkflowEvent
from gateway.app import create_app
from tests.helpers.approved_calls import FINANCE, PROPOSED, pay_registry, released, start_payment
from tests.helpers.engine import Calls
from tests.integration.gateway.conftest import token_for

ADMIN = "rules-admin@example.com"


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, approver_ui=False)) as test_client:
        yield test_client


def test_a_rule_made_over_rest_releases_what_it_says_until_revoked(
    db: Database, client: TestClient, calls: Calls
) -> None:
    headers = token_for(db, ADMIN, role="admin")
    made = client.post(
        "/api/rules",
        headers=headers,
        json={"tool": "pay", "condition": "args.amount <= 500", "days": 2, "note": "small invoices"},
    )
    assert made.status_code == 201, made.text
    rule = made.json()
    assert (rule["tool"], rule["condition"], rule["state"], rule["created_by"]) == (
        "pay",
        "args.amount <= 500",
        "active",
        ADMIN,
    )
    listed = client.get("/api/rules", headers=headers).json()
    assert [r["id"] for r in listed] == [rule["id"]]

    # Within the rule: nobody is asked, and the tool receives the call as proposed.
    registry = pay_registry(calls)
    assert released(db, registry, 300)
    assert calls.of("pay") == [{**PROPOSED, "amount": 300}]
    # Beyond it: a person is asked, and nothing is paid yet.
    asked = start_payment(db, registry, 900)
    assert len(ApprovalEngine(db).list_pending_approvals(workflow_id=asked)) == 1
    assert len(calls.of("pay")) == 1

    changed = client.patch(
        f"/api/rules/{rule['id']}", headers=headers, json={"condition": "args.amount <= 1000"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["condition"] == "args.amount <= 1000"
    assert released(db, registry, 950)
    assert calls.of("pay")[-1] == {**PROPOSED, "amount": 950}

    revoked = client.post(f"/api/rules/{rule['id']}/revoke", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert revoked.json()["revoked_by"] == ADMIN
    assert not released(db, registry, 100)  # asked again once revoked
    assert len(calls.of("pay")) == 2
    again = client.post(f"/api/rules/{rule['id']}/revoke", headers=headers)
    assert again.status_code == 422 and "already revoked" in again.text
    assert client.get("/api/rules", headers=headers).json() == []
    ended = client.get("/api/rules", headers=headers, params={"include_ended": True}).json()
    assert [(r["id"], r["state"], r["uses"]) for r in ended] == [(rule["id"], "revoked", 2)]
    with db.read() as session:
        logged = session.scalars(
            select(WorkflowEvent.event_type).where(WorkflowEvent.event_type.like("rule.%"))
        ).all()
    assert sorted(logged) == ["rule.created", "rule.revoked", "rule.updated"]


def test_only_policy_managers_make_rules(db: Database, client: TestClient) -> None:
    approver = token_for(db, FINANCE, role="approver")
    refused = client.post(
        "/api/rules", headers=approver, json={"tool": "pay", "condition": "True", "days": 1}
    )
    assert refused.status_code == 403, refused.text
    assert "policies:manage" in refused.text
    admin = token_for(db, ADMIN, role="admin")
    rule = client.post(
        "/api/rules", headers=admin, json={"tool": "pay", "condition": "True", "days": 1}
    ).json()
    for attempt in (
        client.patch(f"/api/rules/{rule['id']}", headers=approver, json={"days": 90}),
        client.post(f"/api/rules/{rule['id']}/revoke", headers=approver),
    ):
        assert attempt.status_code == 403, attempt.text
    assert client.get("/api/rules", headers=admin).json()[0]["state"] == "active"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"tool": "pay", "condition": "__import__('os').system('id')", "days": 1}, "condition"),
        ({"tool": "pay", "condition": "args.amount <", "days": 1}, "condition"),
        ({"tool": "pay", "condition": "x" * 5000, "days": 1}, "condition"),
        ({"tool": "pay", "condition": "True", "days": 1000}, "days"),
        ({"tool": "pay", "condition": "True", "days": 0}, "days"),
        ({"tool": "pay", "condition": "True", "days": 1, "owner": "me"}, "owner"),
        ({"tool": "", "condition": "True", "days": 1}, "tool"),
    ],
    ids=["code", "broken", "huge", "too-long", "zero-days", "unknown-field", "no-tool"],
)
def test_a_bad_rule_is_refused_naming_what_is_wrong_and_nothing_is_made(
    db: Database, client: TestClient, body: dict[str, Any], where: str
) -> None:
    headers = token_for(db, ADMIN, role="admin")
    refused = client.post("/api/rules", headers=headers, json=body)
    assert refused.status_code == 422, refused.text
    assert where in refused.text
    assert client.get("/api/rules", headers=headers, params={"include_ended": True}).json() == []


def test_an_unknown_rule_is_not_found(db: Database, client: TestClient) -> None:
    headers = token_for(db, ADMIN, role="admin")
    assert client.post("/api/rules/999/revoke", headers=headers).status_code == 404
    assert client.patch("/api/rules/999", headers=headers, json={"note": "x"}).status_code == 404
    assert client.patch("/api/rules/abc", headers=headers, json={"note": "x"}).status_code == 422


def test_a_tenants_admin_sees_and_changes_only_their_tenants_rules(db: Database, client: TestClient) -> None:
    from core.tenants.registry import create_tenant

    create_tenant(db, "acme", name="Acme")
    create_tenant(db, "globex", name="Globex")
    acme = token_for(db, "boss@acme.example", role="admin")
    add_user(db, "boss@acme.example", role="admin", tenant="acme")
    globex = token_for(db, "boss@globex.example", role="admin")
    add_user(db, "boss@globex.example", role="admin", tenant="globex")
    made = client.post("/api/rules", headers=acme, json={"tool": "pay", "condition": "True", "days": 1})
    assert made.status_code == 201, made.text
    rule = made.json()
    assert rule["tenant"] == "acme"
    assert client.get("/api/rules", headers=globex).json() == []
    assert client.patch(f"/api/rules/{rule['id']}", headers=globex, json={"days": 90}).status_code == 404
    assert client.post(f"/api/rules/{rule['id']}/revoke", headers=globex).status_code == 404
    assert [r["state"] for r in client.get("/api/rules", headers=acme).json()] == ["active"]


@pytest.mark.parametrize("days", ["NaN", "Infinity", "-Infinity"])
def test_a_rule_lasting_a_non_finite_number_of_days_is_refused_in_words(
    db: Database, client: TestClient, days: str
) -> None:
    body = f'{{"tool": "pay", "condition": "True", "days": {days}}}'
    headers = {**token_for(db, ADMIN, role="admin"), "Content-Type": "application/json"}
    made = client.post("/api/rules", headers=headers, content=body)
    assert made.status_code == 422, made.text
    assert "finite number" in made.text, made.text  # not "less than or equal to 90" for NaN
    assert client.get("/api/rules", headers=headers).json() == []
