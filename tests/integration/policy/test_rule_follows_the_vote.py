""" "Allow calls like this" follows the call the answer approved (SQLite and PostgreSQL).

An answer "approve with changes" that allows calls like this makes a rule for the call
as that answer changed it, also when the answer does not decide yet (two approvals
needed): never for the call it replaced. Through the engine (dashboard, CLI, REST)
and through answers that decide once (email links, Slack).
"""

from __future__ import annotations

from typing import Any

import pytest

from core.approvals import standing_rules as rules
from core.approvals.engine import ApprovalEngine
from core.approvals.once import respond_once
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from tests.helpers.approved_calls import REQUESTER
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.engine import Calls, open_approval_of, run, status

ADMIN = "admin@example.com"
ADMIN2 = "admin2@example.com"
NAME = "pay two approvers"
PROPOSED = {"amount": 100, "currency": "USD", "note": "mallory"}
CHANGES = {"amount": 50, "note": "bob"}


@pytest.fixture
def pay_registry(calls: Calls) -> ToolRegistry:
    return _pay_registry(calls)


@pytest.fixture
def people(db: Database) -> None:
    """The requester (a service account) and the two admins asked."""
    for email, role in ((REQUESTER, "service"), (ADMIN, "admin"), (ADMIN2, "admin")):
        add_user(db, email, role=role)


def start(db: Database, registry: ToolRegistry, arguments: dict[str, Any], threshold: int = 2) -> str:
    step = {
        "name": "pay",
        "type": "tool",
        "tool": "pay",
        "args": arguments,
        "requires_approval": True,
        "approval_config": {"requested_from": [ADMIN, ADMIN2], "approval_threshold": threshold},
    }
    workflow_id = ops.create_workflow(db, {"name": NAME, "steps": [step]}, created_by=REQUESTER).id
    run(db, registry)
    return workflow_id


def answer_via_engine(db: Database, approval_id: str) -> None:
    ApprovalEngine(db).respond_to_approval(
        approval_id, ADMIN, "modify", data={"arguments": CHANGES}, allow_for_days=7
    )


def answer_once(db: Database, approval_id: str) -> None:
    respond_once(
        db,
        key=f"slack:{approval_id}",
        what="This Slack answer",
        approval_id=approval_id,
        approver=ADMIN,
        decision="modify",
        data={"arguments": CHANGES},
        channel="slack",
        allow_for_days=7,
    )


@pytest.mark.parametrize("answer", [answer_via_engine, answer_once], ids=["engine", "once"])
def test_a_changed_vote_that_does_not_decide_allows_its_own_call_not_the_proposed_one(
    db: Database, pay_registry: ToolRegistry, calls: Calls, people: None, answer: Any
) -> None:
    first = start(db, pay_registry, PROPOSED)
    request = open_approval_of(db, first)
    answer(db, request.id)
    assert ApprovalEngine(db).get(request.id).status == "pending"  # a second approval is needed
    [rule] = rules.list_rules(db, ADMIN)
    assert rule["condition"] == (
        "len(args) == 3 and 0 <= args.amount <= 50 and args.currency == 'USD' and args.note == 'bob'"
    )
    # The very call the approver changed away is asked about, not released by the rule.
    replaced = start(db, pay_registry, PROPOSED)
    assert status(db, replaced) == "waiting_approval"
    # A call like the approved edit is released.
    alike = start(db, pay_registry, {**PROPOSED, **CHANGES, "amount": 40})
    assert status(db, alike) == "completed"
    assert calls.of("pay") == [{"amount": 40, "currency": "USD", "note": "bob"}]


def test_a_deciding_changed_vote_allows_the_call_it_released(
    db: Database, pay_registry: ToolRegistry, calls: Calls, people: None
) -> None:
    first = start(db, pay_registry, PROPOSED, threshold=1)
    request = open_approval_of(db, first)
    answer_via_engine(db, request.id)
    run(db, pay_registry)
    assert calls.of("pay") == [{"amount": 50, "currency": "USD", "note": "bob"}]
    [rule] = rules.list_rules(db, ADMIN)
    assert "args.note == 'bob'" in rule["condition"] and "args.amount <= 50" in rule["condition"]
    assert status(db, start(db, pay_registry, PROPOSED, threshold=1)) == "waiting_approval"
