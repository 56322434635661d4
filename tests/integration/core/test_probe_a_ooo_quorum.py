"""Out-of-office delegation never merges two approvers into one: four eyes stay four eyes.

``[a, b]`` with a threshold of 2, and ``a`` away delegating to ``b``: the
request went to ``[b]`` with a threshold of 2, which nobody could ever reach
(one vote per person). The delegate does not get two votes: the seat ``a``
leaves is filled by the request's backup, else the first level of its
escalation chain, else the admins, and last by ``a`` after all (nobody else
could take it), and the trail says so (``approval.quorum_kept``). The same
holds when a budget's later level is addressed. A delegation that leaves
enough people changes nothing more.

On SQLite and PostgreSQL (the ``db`` fixture); each test asserts what the
recording ``pay`` tool received.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.approvals import delegation
from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest, utcnow
from tests.helpers.approved_calls import PROPOSED, REQUESTER, pay_step
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.engine import Calls, events, run

A = "a@example.com"
B = "b@example.com"
C = "c@example.com"
BACKUP = "backup@example.com"
CHIEF = "chief@example.com"
ROOT = "root@example.com"
PAID = {k: PROPOSED[k] for k in ("amount", "currency", "note")}


@pytest.fixture
def registry(calls: Calls) -> ToolRegistry:
    return _pay_registry(calls)


@pytest.fixture(autouse=True)
def people(db: Database) -> None:
    add_user(db, REQUESTER, role="service")
    for email in (A, B, C, BACKUP, CHIEF):
        add_user(db, email, role="approver")


def away(db: Database, person: str, delegate: str) -> None:
    delegation.set_out_of_office(db, person, until=utcnow() + timedelta(days=2), delegate=delegate)


def two_person_rule(db: Database, registry: ToolRegistry, **config: Any) -> tuple[str, ApprovalRequest]:
    """``pay`` guarded by [A, B] with a threshold of 2, run until it waits."""
    config = {"requested_from": [A, B], "approval_threshold": 2, "channels": ["email"], **config}
    workflow_id = ops.create_workflow(
        db,
        {"name": "pay", "steps": [pay_step(**config)]},
        input_data={"amount": PROPOSED["amount"], "note": PROPOSED["note"]},
        created_by=REQUESTER,
    ).id
    run(db, registry)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    return workflow_id, approval


def kept(db: Database, workflow_id: str) -> dict[str, Any]:
    [event] = events(db, workflow_id, "approval.quorum_kept")
    assert event.actor == "system:delegation"
    return dict(event.data)


def b_alone_decides_nothing(db: Database, registry: ToolRegistry, calls: Calls, approval_id: str) -> None:
    assert ApprovalEngine(db).respond_to_approval(approval_id, B, "approve").status == "pending"
    run(db, registry)
    assert calls.of("pay") == []


def test_the_backup_takes_the_seat_of_the_person_away(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    away(db, A, B)
    workflow_id, approval = two_person_rule(db, registry, timeout="2h", backup={"to": BACKUP, "after": "50%"})
    assert (approval.approvers, approval.threshold) == ([B, BACKUP], 2)
    event = kept(db, workflow_id)
    assert (event["away"], event["asked"], event["short"]) == ([A], [BACKUP], 0)
    assert event["reason"] == (
        f"{A} is away and delegates to {B}, who is asked already. 2 approvals need 2 different "
        f"people: {BACKUP} asked in their place."
    )
    b_alone_decides_nothing(db, registry, calls, approval.id)
    assert ApprovalEngine(db).respond_to_approval(approval.id, BACKUP, "approve").status == "approved"
    run(db, registry)
    assert calls.of("pay") == [PAID]


def test_the_escalation_chain_takes_the_seat_without_a_backup(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    away(db, A, B)
    workflow_id, approval = two_person_rule(
        db, registry, timeout="2h", on_timeout="escalate", escalate_to=[[CHIEF]]
    )
    assert approval.approvers == [B, CHIEF]
    assert kept(db, workflow_id)["asked"] == [CHIEF]
    b_alone_decides_nothing(db, registry, calls, approval.id)
    ApprovalEngine(db).respond_to_approval(approval.id, CHIEF, "approve")
    run(db, registry)
    assert calls.of("pay") == [PAID]


def test_the_admins_take_the_seat_when_the_request_names_nobody_else(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    add_user(db, ROOT, role="admin")
    away(db, A, B)
    workflow_id, approval = two_person_rule(db, registry)
    assert approval.approvers == [B, "admins"]
    assert kept(db, workflow_id)["asked"] == ["admins"]
    b_alone_decides_nothing(db, registry, calls, approval.id)
    ApprovalEngine(db).respond_to_approval(approval.id, ROOT, "approve")
    run(db, registry)
    assert calls.of("pay") == [PAID]


def test_with_nobody_else_the_person_away_is_asked_after_all(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    """No backup, no chain, no admin: the delegate still never holds both votes."""
    away(db, A, B)
    workflow_id, approval = two_person_rule(db, registry)
    assert (approval.approvers, approval.threshold) == ([B, A], 2)
    event = kept(db, workflow_id)
    assert event["asked"] == [A]
    assert "nobody else could take the seat, so a@example.com asked after all" in event["reason"]
    b_alone_decides_nothing(db, registry, calls, approval.id)
    ApprovalEngine(db).respond_to_approval(approval.id, A, "approve")
    run(db, registry)
    assert calls.of("pay") == [PAID]


def test_a_delegation_that_leaves_enough_people_changes_nothing_more(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    away(db, A, B)
    workflow_id, approval = two_person_rule(db, registry, requested_from=[A, B, C])
    assert (approval.approvers, approval.threshold) == ([B, C], 2)
    assert events(db, workflow_id, "approval.quorum_kept") == []
    b_alone_decides_nothing(db, registry, calls, approval.id)
    ApprovalEngine(db).respond_to_approval(approval.id, C, "approve")
    run(db, registry)
    assert calls.of("pay") == [PAID]


def test_a_budgets_later_level_keeps_its_two_people(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    add_user(db, ROOT, role="admin")
    away(db, B, C)
    levels = [
        {"min_amount": 0, "approvers": [A]},
        {"min_amount": 1000, "approvers": [B, C], "threshold": 2},
    ]
    workflow_id, approval = two_person_rule(db, registry, type="budget", levels=levels)
    assert approval.approvers == [A]
    assert events(db, workflow_id, "approval.quorum_kept") == []
    passed = ApprovalEngine(db).respond_to_approval(approval.id, A, "approve")
    assert (passed.level, passed.approvers, passed.threshold) == (1, [C, "admins"], 2)
    event = kept(db, workflow_id)
    assert (event["level"], event["away"], event["asked"]) == (1, [B], ["admins"])
    assert ApprovalEngine(db).respond_to_approval(approval.id, C, "approve").status == "pending"
    run(db, registry)
    assert calls.of("pay") == []
    ApprovalEngine(db).respond_to_approval(approval.id, ROOT, "approve")
    run(db, registry)
    assert calls.of("pay") == [PAID]
