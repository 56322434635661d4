"""An answer's data holds only keys the request can take; any other is refused by name.

``decision: modify, data: {"foo": 1}`` on a binary request guarding a call was
recorded as ``modified`` while the call ran unchanged: a record that disagreed with
what ran. Now a key the request cannot take (for a guarded call: ``arguments``,
``tool``, a budget's ``approved_amount`` and its form's own fields; for a form: its
fields) is refused by name, nothing is recorded, and the call as shown is still
approved by a plain approval. "Approve with changes" that changes nothing is recorded
as a plain approval (core.approvals.voting).

On SQLite and PostgreSQL (the ``db`` fixture); each test asserts what the recording
``pay`` tool received, or that it did not run and nothing was recorded.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidResponse
from core.identity.users import add_user
from core.store.db import Database
from tests.helpers.approved_calls import (
    FINANCE,
    PROPOSED,
    nothing_recorded_and_nothing_ran,
    pay_registry,
    run,
    waiting,
)
from tests.helpers.engine import Calls
from tests.integration.gateway.conftest import BOSS, token_for, waiting_workflow

# (approval type, extra config, decision, data, the key named)
UNKNOWN: dict[str, tuple[str, dict[str, Any], str, dict[str, Any], str]] = {
    "binary_modify": ("binary", {}, "modify", {"foo": 1}, "foo"),
    "binary_approve": ("binary", {}, "approve", {"foo": 1}, "foo"),
    "binary_beside_an_edit": ("binary", {}, "modify", {"arguments": {"note": "x"}, "foo": 1}, "foo"),
    "budget": ("budget", {}, "modify", {"approved_amount": 9000, "reason": "cut"}, "reason"),
    "form_outside_its_fields": (
        "form",
        {"form_fields": [{"name": "ticket", "type": "string"}]},
        "approve",
        {"ticket": "CHG-1", "foo": 1},
        "foo",
    ),
    "form_without_fields": ("form", {}, "modify", {"foo": 1}, "foo"),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN))
def test_a_key_a_guarded_call_cannot_take_is_refused_by_name(db: Database, calls: Calls, case: str) -> None:
    approval_type, config, decision, data, key = UNKNOWN[case]
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type, **config)
    with pytest.raises(InvalidResponse) as refused:
        ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, decision, data)
    assert [p for p in refused.value.problems if p.startswith(f"{key}: ")], refused.value.problems
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id)


def test_rest_answers_422_naming_the_key(db: Database, calls: Calls) -> None:
    from gateway.app import create_app

    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    with TestClient(create_app(db, approver_ui=False)) as client:
        response = client.post(
            f"/api/approvals/{approval.id}/respond",
            json={"decision": "modify", "data": {"foo": 1}},
            headers=token_for(db, FINANCE),
        )
    assert response.status_code == 422, response.text
    assert [p for p in response.json()["problems"] if p.startswith("foo: ")], response.json()
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id)


def test_a_form_fields_answer_beside_the_call_is_still_taken(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "form", form_fields=[{"name": "ticket", "type": "string"}])
    decided = ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "modify", {"ticket": "CHG-1", "arguments": {"note": "net 30"}}
    )
    assert decided.status == "modified"
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "note": "net 30"}]


def test_a_gate_form_refuses_keys_outside_its_fields(db: Database) -> None:
    add_user(db, BOSS, role="approver")
    engine = ApprovalEngine(db)
    fields = [{"name": "ticket", "type": "string"}]
    _, approval = waiting_workflow(db, {"type": "form", "form_fields": fields})
    with pytest.raises(InvalidResponse, match="tikcet: "):
        engine.respond_to_approval(approval.id, BOSS, "approve", {"tikcet": "CHG-1"})
    assert engine.responses(approval.id) == []
    decided = engine.respond_to_approval(approval.id, BOSS, "approve", {"ticket": "CHG-1"})
    assert (decided.status, decided.decision_data) == ("approved", {"ticket": "CHG-1"})


def test_a_budget_gate_refuses_other_keys_and_an_unchanged_amount_is_an_approval(db: Database) -> None:
    add_user(db, BOSS, role="approver")
    engine = ApprovalEngine(db)
    budget = {"type": "budget", "context_data": {"amount": 500, "currency": "EUR"}}
    _, approval = waiting_workflow(db, budget)
    with pytest.raises(InvalidResponse, match="reason: "):
        engine.respond_to_approval(approval.id, BOSS, "modify", {"approved_amount": 300, "reason": "x"})
    assert engine.responses(approval.id) == []
    decided = engine.respond_to_approval(approval.id, BOSS, "modify", {"approved_amount": 500})
    # "with changes" that change nothing: the record says approved, as what is allowed is.
    assert decided.status == "approved"
    assert decided.decision_data is not None and decided.decision_data["approved_amount"] == 500
    [vote] = engine.responses(approval.id)
    assert vote.decision == "approve"


def test_modify_with_nothing_changed_on_a_guarded_call_is_recorded_as_an_approval(
    db: Database, calls: Calls
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    decided = ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "modify", {})
    assert decided.status == "approved"
    assert [v.decision for v in ApprovalEngine(db).responses(approval.id)] == ["approve"]
    run(db, registry)
    assert calls.of("pay") == [PROPOSED]
