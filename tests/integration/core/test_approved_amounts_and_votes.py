"""What runs is what was approved, where the amount or the votes could bend it.

On SQLite and PostgreSQL (the ``db`` fixture), each test asserts what the
recording tool *received*:

* a budget's approved amount is a positive finite number whatever the
  request's answer schema says, and it must suit the tool's own input schema
  (an integer argument gets no 99.5);
* a call's numbers come back from a JSONB column as they went in, so an edit
  to 2e16 or -0.0 is not mistaken for tampering;
* several approvers release a call only when that many approved that call:
  one approver's edit is not run on another's approval of the original;
* "approve with changes" that changes nothing is an approval of the call shown.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidResponse
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.store.db import Database
from gateway.app import create_app
from tests.helpers.approved_calls import FINANCE, PROPOSED, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.integration.gateway.conftest import token_for

MANAGER = "manager@example.com"
DIRECTOR = "director@example.com"


def integer_registry(calls: Calls) -> ToolRegistry:
    """``pay`` whose amount is an integer number of cents, at least 100."""
    from pydantic import Field

    registry = ToolRegistry()

    @registry.register("pay")
    def pay(
        amount: int = Field(ge=100), currency: str = "USD", note: str = "", idempotency_key: str = ""
    ) -> dict[str, Any]:
        calls.add("pay", amount=amount, currency=currency, note=note)
        return {}

    return registry


def votes(db: Database, approval_id: str) -> list[tuple[str, str]]:
    return [(v.approver, v.decision) for v in ApprovalEngine(db).responses(approval_id)]


def refused(db: Database, approval_id: str, data: dict[str, Any], match: str, who: str = FINANCE) -> None:
    with pytest.raises(InvalidResponse, match=match):
        ApprovalEngine(db).respond_to_approval(approval_id, who, "modify", data)
    assert ApprovalEngine(db).get(approval_id).status == "pending"
    assert votes(db, approval_id) == []


# -- a budget's approved amount ----------------------------------------------------------


def test_an_approved_amount_the_tool_does_not_take_is_refused(db: Database, calls: Calls) -> None:
    registry = integer_registry(calls)
    _, approval = waiting(db, registry, "budget", amount=12500)
    refused(db, approval.id, {"approved_amount": 99.5}, r"approved_amount: pay does not take it: amount")
    refused(db, approval.id, {"approved_amount": 50}, r"approved_amount: pay does not take it: amount")
    run(db, registry)
    assert calls.of("pay") == []
    ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "approve", {"approved_amount": 9000})
    run(db, registry)
    assert calls.of("pay") == [{"amount": 9000, "currency": "USD", "note": "invoice 7"}]
    assert isinstance(calls.of("pay")[0]["amount"], int)


CUSTOM_SCHEMA = {"type": "object", "properties": {"reason": {"type": "string"}}}


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        (-50, "must be more than 0"),
        (0, "must be more than 0"),
        (-1e308, "must be more than 0"),
        (True, "must be a number"),
        ("1e-9", "must be a number"),
        ("-inf", "must be a number"),
        (10**400, "must be a number"),
        (12501, "is more than the 12500 requested"),
    ],
)
def test_a_custom_answer_schema_does_not_let_any_amount_through(
    db: Database, calls: Calls, amount: Any, why: str
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", schema=CUSTOM_SCHEMA)
    refused(db, approval.id, {"approved_amount": amount, "reason": "ok"}, f"approved_amount: .*{why}")
    run(db, registry)
    assert calls.of("pay") == []


def test_a_custom_answer_schema_still_releases_a_lower_amount(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", schema=CUSTOM_SCHEMA)
    ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "approve", {"approved_amount": 700.25, "reason": "partial"}
    )
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "amount": 700.25}]


def test_rest_refuses_numbers_no_float_holds_with_a_422(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", schema=CUSTOM_SCHEMA)
    headers = token_for(db, FINANCE)
    with TestClient(create_app(db, approver_ui=False)) as client:
        for data in ({"arguments": {"amount": 10**400}}, {"approved_amount": "-inf"}):
            response = client.post(
                f"/api/approvals/{approval.id}/respond",
                json={"decision": "modify", "data": data},
                headers=headers,
            )
            assert response.status_code == 422, response.text
    assert votes(db, approval.id) == []
    run(db, registry)
    assert calls.of("pay") == []


# -- numbers as the database gives them back ------------------------------------------------


@pytest.mark.parametrize(("typed", "received"), [(2e16, 20000000000000000), (1e23, 10**23), (-0.0, 0.0)])
def test_an_edit_to_a_number_jsonb_rewrites_still_runs(
    db: Database, calls: Calls, typed: float, received: float
) -> None:
    registry = ToolRegistry()

    @registry.register("pay")
    def pay(amount: float, currency: str, note: str = "", idempotency_key: str = "") -> dict[str, Any]:
        calls.add("pay", amount=amount, currency=currency, note=note)
        return {}

    workflow_id, approval = waiting(db, registry)
    ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "modify", {"arguments": {"amount": typed}})
    run(db, registry)
    assert ops.get_workflow(db, workflow_id).status == "completed"
    assert calls.of("pay") == [{**PROPOSED, "amount": received}]
    # The number as written (1e23 is 10**23, not the float nearest it).
    assert calls.of("pay")[0]["amount"] == Decimal(repr(typed))


# -- several approvers ---------------------------------------------------------------------------


def test_two_approvers_who_approved_different_calls_release_neither(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    workflow_id, approval = waiting(db, registry, requested_from=[FINANCE, MANAGER], approval_threshold=2)
    engine = ApprovalEngine(db)
    engine.respond_to_approval(
        approval.id, FINANCE, "modify", {"arguments": {"amount": 10, "note": "to alice"}}
    )
    decided = engine.respond_to_approval(approval.id, MANAGER, "approve", {})
    assert decided.status == "rejected"
    assert "approved different calls" in decided.decision_data["reason"]
    run(db, registry)
    assert calls.of("pay") == []
    assert ops.get_workflow(db, workflow_id).status != "completed"


def test_the_call_that_runs_is_the_one_enough_approvers_approved(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, requested_from=[FINANCE, MANAGER, DIRECTOR], approval_threshold=2)
    engine = ApprovalEngine(db)
    engine.respond_to_approval(approval.id, FINANCE, "modify", {"arguments": {"note": "to alice"}})
    assert engine.respond_to_approval(approval.id, MANAGER, "approve", {}).status == "pending"
    decided = engine.respond_to_approval(approval.id, DIRECTOR, "approve", {})
    assert decided.status == "approved"
    run(db, registry)
    assert calls.of("pay") == [PROPOSED]  # manager's and director's, not finance's edit


def test_two_approvers_who_made_the_same_edit_release_it(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, requested_from=[FINANCE, MANAGER], approval_threshold=2)
    engine = ApprovalEngine(db)
    for who in (FINANCE, MANAGER):
        decided = engine.respond_to_approval(approval.id, who, "modify", {"arguments": {"note": "net 30"}})
    assert decided.status == "modified"
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "note": "net 30"}]


def test_budget_approvers_agree_on_the_call_and_the_lowest_amount_runs(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", requested_from=[FINANCE, MANAGER], approval_threshold=2)
    engine = ApprovalEngine(db)
    engine.respond_to_approval(approval.id, FINANCE, "approve", {"approved_amount": 9000})
    assert engine.respond_to_approval(approval.id, MANAGER, "approve", {}).status == "modified"
    run(db, registry)
    # The manager allowed up to 12500, finance up to 9000: both allowed 9000.
    assert calls.of("pay") == [{**PROPOSED, "amount": 9000}]


def test_budget_approvers_who_edited_other_arguments_differently_release_nothing(
    db: Database, calls: Calls
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", requested_from=[FINANCE, MANAGER], approval_threshold=2)
    engine = ApprovalEngine(db)
    engine.respond_to_approval(
        approval.id, FINANCE, "modify", {"arguments": {"note": "to alice"}, "approved_amount": 9000}
    )
    assert engine.respond_to_approval(approval.id, MANAGER, "approve", {}).status == "rejected"
    run(db, registry)
    assert calls.of("pay") == []


# -- "with changes" that change nothing ------------------------------------------------------------


def test_approve_with_changes_that_change_nothing_is_an_approval(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    decided = ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "modify", {"arguments": {"note": PROPOSED["note"]}}
    )
    assert decided.status == "approved"
    assert votes(db, approval.id) == [(FINANCE, "approve")]
    run(db, registry)
    assert calls.of("pay") == [PROPOSED]


def test_the_next_approver_is_shown_the_changes_another_approved(db: Database, calls: Calls) -> None:
    """Every channel's text (core.approvals.presentation) tells the manager what finance
    changed, and that only approvals of one call add up, before they answer."""
    from core.approvals.presentation import request_view

    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", requested_from=[FINANCE, MANAGER], approval_threshold=2)
    engine = ApprovalEngine(db)
    engine.respond_to_approval(
        approval.id, FINANCE, "modify", {"arguments": {"note": "to alice"}, "approved_amount": 9000}
    )
    lines = request_view(engine.get(approval.id), engine.responses(approval.id)).summary_lines()
    # The amount is not among them: budget votes agree on it (the lowest runs).
    assert "Approved with changes by finance@example.com: note: invoice 7 -> to alice" in lines, lines
    assert any(line.startswith("Only approvals of the same call add up (2 needed)") for line in lines), lines
    engine.respond_to_approval(
        approval.id, MANAGER, "modify", {"arguments": {"note": "to alice"}, "approved_amount": 12500}
    )
    decided = engine.get(approval.id)
    assert decided.status == "modified"
    assert not request_view(decided, engine.responses(approval.id)).edits_by_others
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "note": "to alice", "amount": 9000}]
