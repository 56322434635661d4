"""Standing rules (SQLite and PostgreSQL): "approve, and allow calls like this for N days".

A rule releases a matching call without asking, records itself on the decision
and on the rule; it does not release a call that does not match, after its
expiry, once revoked, or in another tenant.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from core.approvals import standing_rules as rules
from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidRule, NotAuthorized, RuleNotFound
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import ApprovalRequest, Notification, StandingRule, WorkflowEvent, utcnow
from core.tenants.registry import create_tenant
from tests.helpers.approved_calls import FINANCE, REQUESTER, pay_step
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.engine import Calls, events, open_approval_of, run, status

ADMIN = "policy-admin@example.com"
NAME = "pay an invoice"


@pytest.fixture
def pay_registry(calls: Calls) -> ToolRegistry:
    return _pay_registry(calls)


@pytest.fixture
def people(db: Database) -> None:
    add_user(db, REQUESTER, role="service")
    add_user(db, FINANCE, role="approver")
    add_user(db, ADMIN, role="admin")


def pay(
    db: Database, amount: float, *, by: str = REQUESTER, name: str = NAME, approver: str = FINANCE
) -> str:
    step = pay_step()
    step["approval_config"]["requested_from"] = approver
    return ops.create_workflow(
        db, {"name": name, "steps": [step]}, input_data={"amount": amount, "note": "invoice 7"}, created_by=by
    ).id


def test_a_rule_releases_a_matching_call_without_asking(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    created = rules.create_rule(
        db, ADMIN, tool="pay", condition="args.amount <= 200", days=7, workflow_name=NAME
    )
    assert created["state"] == "active" and created["tenant"] is None
    workflow_id = pay(db, 150)
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [{"amount": 150, "currency": "USD", "note": "invoice 7"}]
    [decided] = events(db, workflow_id, "approval.decided")
    assert decided.actor == f"system:rule:{created['id']}"
    assert decided.data["data"]["rule_id"] == created["id"]
    assert decided.data["released_call"]["arguments"]["amount"] == 150
    assert decided.data["released_call"]["rule_id"] == created["id"]
    with db.read() as session:
        approval = session.scalars(select(ApprovalRequest)).one()
        assert (approval.status, approval.decided_by) == ("approved", decided.actor)
        assert approval.decision_data is not None
        assert approval.decision_data["rule_id"] == created["id"]
        assert approval.released_call is not None
        assert approval.released_call["rule_id"] == created["id"]
        # Nobody was asked: no notification, no assignee.
        assert session.scalars(select(Notification)).all() == []
        rule = session.get(StandingRule, created["id"])
        assert rule is not None and rule.uses == 1 and rule.last_used_at is not None


def test_a_call_that_does_not_match_is_asked_about(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    rules.create_rule(db, ADMIN, tool="pay", condition="args.amount <= 200", days=7)
    rules.create_rule(db, ADMIN, tool="pay", condition="True", days=7, workflow_name="other")
    rules.create_rule(db, ADMIN, tool="refund", condition="True", days=7)
    workflow_id = pay(db, 250)
    run(db, pay_registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("pay") == []
    assert open_approval_of(db, workflow_id).approvers == [FINANCE]


def test_an_expired_rule_releases_nothing(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    created = rules.create_rule(db, ADMIN, tool="pay", condition="True", days=1)
    with db.session() as session:
        session.execute(
            update(StandingRule)
            .where(StandingRule.id == created["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    workflow_id = pay(db, 10)
    run(db, pay_registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert [r["id"] for r in rules.list_rules(db, ADMIN)] == []
    [ended] = rules.list_rules(db, ADMIN, include_ended=True)
    assert ended["state"] == "expired"


def test_a_revoked_rule_releases_nothing_and_is_audited(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    created = rules.create_rule(db, ADMIN, tool="pay", condition="True", days=3)
    revoked = rules.revoke_rule(db, ADMIN, created["id"])
    assert (revoked["state"], revoked["revoked_by"]) == ("revoked", ADMIN)
    with pytest.raises(InvalidRule, match="already revoked"):
        rules.revoke_rule(db, ADMIN, created["id"])
    workflow_id = pay(db, 10)
    run(db, pay_registry)
    assert status(db, workflow_id) == "waiting_approval"
    with db.read() as session:
        kinds = session.scalars(
            select(WorkflowEvent.event_type)
            .where(WorkflowEvent.event_type.like("rule.%"))
            .order_by(WorkflowEvent.id)
        ).all()
    assert kinds == ["rule.created", "rule.revoked"]


def test_rules_never_cross_tenants(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    create_tenant(db, "acme", name="Acme", actor=ADMIN)
    create_tenant(db, "globex", name="Globex", actor=ADMIN)
    add_user(db, "bot@acme.example", role="service", tenant="acme")
    add_user(db, "amy@acme.example", role="approver", tenant="acme")
    add_user(db, "bot@globex.example", role="service", tenant="globex")
    add_user(db, "gil@globex.example", role="approver", tenant="globex")
    add_user(db, "root@acme.example", role="admin", tenant="acme")
    # A tenant admin's rule is their tenant's; a platform rule is the platform's.
    acme_rule = rules.create_rule(db, "root@acme.example", tool="pay", condition="True", days=2)
    assert acme_rule["tenant"] == "acme"
    globex = pay(db, 10, by="bot@globex.example", approver="gil@globex.example")
    run(db, pay_registry)
    assert status(db, globex) == "waiting_approval"
    acme = pay(db, 10, by="bot@acme.example", approver="amy@acme.example")
    run(db, pay_registry)
    assert status(db, acme) == "completed"
    platform = pay(db, 10)
    run(db, pay_registry)
    assert status(db, platform) == "waiting_approval"
    # A tenant's admin neither sees nor revokes another tenant's (or the platform's) rules.
    platform_rule = rules.create_rule(db, ADMIN, tool="pay", condition="False", days=2)
    assert [r["id"] for r in rules.list_rules(db, "root@acme.example")] == [acme_rule["id"]]
    with pytest.raises(RuleNotFound):
        rules.revoke_rule(db, "root@acme.example", platform_rule["id"])
    with pytest.raises(NotAuthorized):
        rules.create_rule(db, "root@acme.example", tool="pay", condition="True", days=2, tenant="globex")


def test_allow_for_days_answers_and_creates_the_rule_in_one_transaction(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    first = pay(db, 150, approver=ADMIN)
    run(db, pay_registry)
    request = open_approval_of(db, first)
    ApprovalEngine(db).respond_to_approval(request.id, ADMIN, "approve", allow_for_days=7)
    [rule] = rules.list_rules(db, ADMIN)
    assert rule["condition"] == (
        "len(args) == 3 and 0 <= args.amount <= 150 and args.currency == 'USD' and args.note == 'invoice 7'"
    )
    assert (rule["tool"], rule["workflow_name"], rule["source_approval_id"]) == ("pay", NAME, request.id)
    run(db, pay_registry)
    second = pay(db, 120, approver=ADMIN)
    third = pay(db, 151, approver=ADMIN)
    run(db, pay_registry)
    assert (status(db, first), status(db, second), status(db, third)) == (
        "completed",
        "completed",
        "waiting_approval",
    )
    assert [c["amount"] for c in calls.of("pay")] == [150, 120]


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"allow_for_days": 0}, "days: must be more than 0"),
        ({"allow_for_days": 400}, "days: must be more than 0 and at most 90"),
        ({"allow_for_days": 7, "allow_when": "args.amount <"}, "allow_when: not a valid expression"),
    ],
)
def test_a_bad_allow_records_nothing(
    db: Database, pay_registry: ToolRegistry, people: None, kwargs: dict[str, Any], problem: str
) -> None:
    workflow_id = pay(db, 150, approver=ADMIN)
    run(db, pay_registry)
    request = open_approval_of(db, workflow_id)
    with pytest.raises(InvalidRule, match=problem):
        ApprovalEngine(db).respond_to_approval(request.id, ADMIN, "approve", **kwargs)
    assert ApprovalEngine(db).get(request.id).status == "pending"
    assert rules.list_rules(db, ADMIN, include_ended=True) == []


def test_allowing_needs_policies_manage_and_an_approving_answer(
    db: Database,
    pay_registry: ToolRegistry,
    people: None,
) -> None:
    workflow_id = pay(db, 150)
    run(db, pay_registry)
    request = open_approval_of(db, workflow_id)
    with pytest.raises(NotAuthorized, match="policies:manage"):
        ApprovalEngine(db).respond_to_approval(request.id, FINANCE, "approve", allow_for_days=7)
    with pytest.raises(InvalidRule, match="only an approving answer"):
        ApprovalEngine(db).respond_to_approval(request.id, FINANCE, "reject", allow_for_days=7)
    assert ApprovalEngine(db).get(request.id).status == "pending"
    with pytest.raises(NotAuthorized):
        rules.create_rule(db, FINANCE, tool="pay", condition="True", days=1)


def test_edit_changes_the_condition_and_a_bad_edit_changes_nothing(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    created = rules.create_rule(db, ADMIN, tool="pay", condition="args.amount <= 5", days=7)
    with pytest.raises(InvalidRule, match="condition: unknown name 'amount'"):
        rules.update_rule(db, ADMIN, created["id"], condition="amount <= 500")
    updated = rules.update_rule(db, ADMIN, created["id"], condition="args.amount <= 500", days=2)
    assert updated["condition"] == "args.amount <= 500"
    workflow_id = pay(db, 400)
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"


def test_the_executor_still_checks_a_call_a_rule_released(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rule's release goes through the same digest check as a person's: a released
    call changed in its row after the decision does not run."""
    rules.create_rule(db, ADMIN, tool="pay", condition="True", days=7)
    workflow_id = pay(db, 10)
    # Stop right after the decision: one step per claim, and another workflow waiting so
    # the claim hands this one back instead of going on.
    ops.create_workflow(
        db,
        {
            "name": "other",
            "steps": [{"name": "refund", "type": "tool", "tool": "refund", "args": {"amount": 1}}],
        },
        created_by=REQUESTER,
    )
    monkeypatch.setenv("COUNTERSIGN_STEPS_PER_CLAIM", "1")
    assert build_runner(db, registry=pay_registry, lease_seconds=10).run_once()
    assert calls.of("pay") == []
    with db.session() as session:
        row = session.scalars(select(ApprovalRequest)).one()
        assert row.status == "approved" and row.released_call is not None
        forged = {**row.released_call, "arguments": {**row.released_call["arguments"], "amount": 90000}}
        session.execute(
            update(ApprovalRequest).where(ApprovalRequest.id == row.id).values(released_call=forged)
        )
    monkeypatch.delenv("COUNTERSIGN_STEPS_PER_CLAIM")
    run(db, pay_registry)
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []
    [refused] = events(db, workflow_id, "call.refused")
    assert "does not match the digest" in refused.data["reason"]


def test_a_rule_releases_a_budget_request_at_the_amount_asked(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    rules.create_rule(db, ADMIN, tool="pay", condition="args.amount <= 500", days=1)
    step = pay_step("budget")
    workflow_id = ops.create_workflow(
        db,
        {"name": NAME, "steps": [step]},
        input_data={"amount": 400, "note": "invoice 7"},
        created_by=REQUESTER,
    ).id
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    assert [c["amount"] for c in calls.of("pay")] == [400]
    with db.read() as session:
        approval = session.scalars(select(ApprovalRequest)).one()
        assert approval.decision_data is not None
        assert approval.decision_data["approved_amount"] == 400


def test_a_rule_of_a_disabled_account_releases_nothing(
    db: Database, pay_registry: ToolRegistry, calls: Calls, people: None
) -> None:
    from core.identity.account_state import disable_user, enable_user

    add_user(db, "other-admin@example.com", role="admin")
    rules.create_rule(db, "other-admin@example.com", tool="pay", condition="True", days=1)
    disable_user(db, "other-admin@example.com", actor=ADMIN)
    waiting_id = pay(db, 10)
    run(db, pay_registry)
    assert status(db, waiting_id) == "waiting_approval"
    enable_user(db, "other-admin@example.com", actor=ADMIN)
    released_id = pay(db, 10)
    run(db, pay_registry)
    assert status(db, released_id) == "completed"


def test_a_rule_releases_a_call_that_follows_another_step(
    db: Database, pay_registry: ToolRegistry, calls: Calls, people: None
) -> None:
    """The step after another starts in the previous outcome's transaction: a rule that
    releases its call there lets the workflow go on at once, not wait for anyone."""
    rules.create_rule(db, ADMIN, tool="pay", condition="args.amount <= 200", days=1)
    first = {"name": "refund first", "type": "tool", "tool": "refund", "args": {"amount": 1}}
    workflow_id = ops.create_workflow(
        db,
        {"name": NAME, "steps": [first, pay_step(), {**pay_step(), "name": "pay again"}]},
        input_data={"amount": 150, "note": "invoice 7"},
        created_by=REQUESTER,
    ).id
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("refund") == [{"amount": 1}]
    assert [c["amount"] for c in calls.of("pay")] == [150, 150]
    assert len(events(db, workflow_id, "approval.decided")) == 2


def test_the_audit_trail_holds_with_rules_and_their_releases(
    db: Database, pay_registry: ToolRegistry, calls: Calls, people: None
) -> None:
    """Rule events (outside any workflow) and a rule's release are sealed like any other."""
    from core.records.trail_verify import first_break, verify

    created = rules.create_rule(db, ADMIN, tool="pay", condition="True", days=1)
    workflow_id = pay(db, 10)
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    rules.update_rule(db, ADMIN, created["id"], condition="args.amount <= 5")
    rules.revoke_rule(db, ADMIN, created["id"])
    reports = verify(db, ADMIN)
    assert first_break(reports) is None
    assert workflow_id in {r.chain for r in reports}
