"""A deadline's approval (``on_expiry: approve``) keeps what an earlier level allowed.

A budget with two levels: the first approver lowers 5000 to 3000, the second
lets the deadline pass and ``on_expiry: approve`` decides. What ran was the
lowered amount, but the decision recorded ``approved`` with no
``approved_amount``: a later step reading
``${steps.ok.approval.data.approved_amount}`` failed with a KeyError, and the
record did not say the amount had been lowered. Now the decision is
``modified`` with the lowest amount approved so far, what runs is that amount,
and the trail says it was approved on expiry.

On SQLite and PostgreSQL (the ``db`` fixture); each test asserts what the
recording ``pay`` tool received.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.approvals.presentation import request_view
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest, utcnow
from tests.helpers.engine import Calls, events, run, start

FIRST = "first@example.com"
SECOND = "second@example.com"
LEVELS = [{"min_amount": 0, "approvers": [FIRST]}, {"min_amount": 1000, "approvers": [SECOND]}]
CONFIG: dict[str, Any] = {"type": "budget", "timeout": "1h", "on_expiry": "approve", "levels": LEVELS}


@pytest.fixture
def registry(calls: Calls) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register("pay")
    def pay(amount: float, currency: str, idempotency_key: str, note: str = "") -> dict[str, Any]:
        """Pay (records what it received)."""
        calls.add("pay", amount=amount, currency=currency, note=note)
        return {"paid": amount}

    return reg


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    for person in (FIRST, SECOND):
        add_user(db, person, role="approver")


def gate_then_pay() -> list[dict[str, Any]]:
    """A budget gate (no call), then a payment of the amount the gate's decision says."""
    return [
        {
            "name": "ok",
            "type": "approval",
            "title": "Budget",
            "approval_config": {**CONFIG, "context_data": {"amount": 5000, "currency": "USD"}},
        },
        {
            "name": "pay",
            "type": "tool",
            "tool": "pay",
            "args": {
                "amount": "${steps.ok.approval.data.approved_amount}",
                "currency": "USD",
                "note": "${steps.ok.approval.status}",
            },
        },
    ]


def guarded_pay() -> list[dict[str, Any]]:
    """A payment of 5000 guarded by the budget itself."""
    return [
        {
            "name": "pay",
            "type": "tool",
            "tool": "pay",
            "requires_approval": True,
            "args": {"amount": 5000, "currency": "USD"},
            "approval_config": CONFIG,
        }
    ]


def waiting(db: Database, registry: ToolRegistry, steps: list[dict[str, Any]]) -> tuple[str, ApprovalRequest]:
    workflow_id = start(db, steps)
    run(db, registry)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    return workflow_id, approval


def pass_deadline(db: Database, approval_id: str) -> None:
    with db.session() as session:
        session.get_one(ApprovalRequest, approval_id).expires_at = utcnow() - timedelta(seconds=1)


def lower_then_let_expire(db: Database, approval_id: str) -> ApprovalRequest:
    engine = ApprovalEngine(db)
    passed = engine.respond_to_approval(
        approval_id, FIRST, "modify", {"approved_amount": 3000}, comment="3000"
    )
    assert (passed.status, passed.level, passed.approvers) == ("pending", 1, [SECOND])
    pass_deadline(db, approval_id)
    assert engine.expire_due() == 1
    return engine.get(approval_id)


def check_trail(db: Database, workflow_id: str, approval: ApprovalRequest) -> None:
    """The trail says the deadline approved it, and what amount that approved."""
    [expired] = [e for e in events(db, workflow_id, "approval.expired") if e.approval_id == approval.id]
    assert (expired.actor, expired.data["on_expiry"], expired.data["approved_amount"]) == (
        "system:timeout",
        "approve",
        3000.0,
    )
    [decided] = [e for e in events(db, workflow_id, "approval.decided") if e.approval_id == approval.id]
    assert decided.actor == "system:timeout"
    assert decided.after == {"status": "modified"}
    assert decided.data["data"] == {
        "reason": "approved on expiry",
        "on_expiry": "approve",
        "approved_amount": 3000.0,
    }


def test_a_gate_approved_on_expiry_keeps_the_lowered_amount(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, registry, gate_then_pay())
    decided = lower_then_let_expire(db, approval.id)
    assert (decided.status, decided.decided_by) == ("modified", "system:timeout")
    assert decided.decision_data == {
        "reason": "approved on expiry",
        "on_expiry": "approve",
        "approved_amount": 3000.0,
    }
    run(db, registry)
    assert ops.get_workflow(db, workflow_id).status == "completed"
    # The later step read the amount the record holds, and the outcome.
    assert calls.of("pay") == [{"amount": 3000.0, "currency": "USD", "note": "modified"}]
    check_trail(db, workflow_id, decided)


def test_a_guarded_call_approved_on_expiry_runs_and_records_the_lowered_amount(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, registry, guarded_pay())
    decided = lower_then_let_expire(db, approval.id)
    assert (decided.status, (decided.decision_data or {}).get("approved_amount")) == ("modified", 3000.0)
    assert decided.released_call is not None and decided.released_call["arguments"]["amount"] == 3000
    run(db, registry)
    assert ops.get_workflow(db, workflow_id).status == "completed"
    assert calls.of("pay") == [{"amount": 3000, "currency": "USD", "note": ""}]
    check_trail(db, workflow_id, decided)
    [decision] = events(db, workflow_id, "approval.decided")
    assert decision.data["diff"] == [{"argument": "amount", "before": 5000, "after": 3000}]
    # What every channel shows of it: lowered by the first approver, then approved on expiry.
    engine = ApprovalEngine(db)
    view = request_view(engine.get(approval.id), engine.responses(approval.id))
    lines = view.summary_lines()
    assert "  (lowered from 5,000.00 USD by first@example.com)" in lines, lines
    assert (
        "Approvers: level 2 of 2: first@example.com approved with changes, "
        "second@example.com not answered (approved on expiry)"
    ) in lines, lines
    assert view.outcome is not None
    assert view.outcome.word == "approved with changes"
    assert "changed by first@example.com; approved on expiry" in view.outcome.detail, view.outcome


def test_a_budget_nobody_lowered_is_approved_on_expiry_at_the_amount_requested(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, registry, gate_then_pay())
    pass_deadline(db, approval.id)
    assert ApprovalEngine(db).expire_due() == 1
    decided = ApprovalEngine(db).get(approval.id)
    assert (decided.status, (decided.decision_data or {}).get("approved_amount")) == ("approved", 5000.0)
    run(db, registry)
    assert calls.of("pay") == [{"amount": 5000.0, "currency": "USD", "note": "approved"}]
