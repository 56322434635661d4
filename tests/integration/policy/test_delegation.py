"""Out of office with a delegate, and backup approvers (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.approvals import delegation
from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidDelegation, NotAuthorized
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalBackup, ApprovalRequest, Notification, OutOfOffice, utcnow
from tests.helpers.approved_calls import FINANCE, REQUESTER, pay_step
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.engine import Calls, events, open_approval_of, run, status

DEPUTY = "deputy@example.com"
BACKUP = "backup@example.com"
ADMIN = "root@example.com"


@pytest.fixture
def pay_registry(calls: Calls) -> ToolRegistry:
    return _pay_registry(calls)


@pytest.fixture
def people(db: Database) -> None:
    add_user(db, REQUESTER, role="service")
    for email in (FINANCE, DEPUTY, BACKUP):
        add_user(db, email, role="approver")
    add_user(db, ADMIN, role="admin")


def pay(db: Database, **config: object) -> str:
    config.setdefault("channels", ["email"])  # one notification row per person asked
    return ops.create_workflow(
        db,
        {"name": "pay", "steps": [pay_step(**config)]},
        input_data={"amount": 10, "note": "n"},
        created_by=REQUESTER,
    ).id


def recipients(db: Database, approval_id: str) -> list[str]:
    with db.read() as session:
        return sorted(
            session.scalars(
                select(Notification.recipient).where(Notification.approval_id == approval_id)
            ).all()
        )


def test_a_request_to_someone_away_goes_to_their_delegate_and_is_audited(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    until = utcnow() + timedelta(days=3)
    setting = delegation.set_out_of_office(db, FINANCE, until=until, delegate=DEPUTY)
    assert setting["delegate"] == DEPUTY
    workflow_id = pay(db)
    run(db, pay_registry)
    request = open_approval_of(db, workflow_id)
    assert request.approvers == [DEPUTY]
    assert recipients(db, request.id) == [DEPUTY]
    [moved] = events(db, workflow_id, "approval.delegated")
    assert (moved.data["from"], moved.data["to"]) == (FINANCE, DEPUTY)
    assert moved.data["until"] == until.isoformat()
    with pytest.raises(NotAuthorized):
        ApprovalEngine(db).respond_to_approval(request.id, FINANCE, "approve")
    ApprovalEngine(db).respond_to_approval(request.id, DEPUTY, "approve")
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"


def test_back_in_the_office_requests_reach_the_person_again(
    db: Database,
    pay_registry: ToolRegistry,
    people: None,
) -> None:
    delegation.set_out_of_office(db, FINANCE, until=utcnow() + timedelta(days=1), delegate=DEPUTY)
    assert delegation.clear_out_of_office(db, FINANCE) is True
    assert delegation.clear_out_of_office(db, FINANCE) is False
    workflow_id = pay(db)
    run(db, pay_registry)
    assert open_approval_of(db, workflow_id).approvers == [FINANCE]


def test_a_past_absence_no_longer_redirects(db: Database, pay_registry: ToolRegistry, people: None) -> None:
    delegation.set_out_of_office(db, FINANCE, until=utcnow() + timedelta(days=1), delegate=DEPUTY)
    with db.session() as session:
        session.execute(update(OutOfOffice).values(until=utcnow() - timedelta(minutes=1)))
    workflow_id = pay(db)
    run(db, pay_registry)
    assert open_approval_of(db, workflow_id).approvers == [FINANCE]
    assert delegation.list_out_of_office(db, ADMIN) == []


def test_delegates_away_in_turn_are_followed_but_never_round_a_loop(
    db: Database,
    pay_registry: ToolRegistry,
    people: None,
) -> None:
    until = utcnow() + timedelta(days=1)
    delegation.set_out_of_office(db, FINANCE, until=until, delegate=DEPUTY)
    delegation.set_out_of_office(db, DEPUTY, until=until, delegate=BACKUP)
    delegation.set_out_of_office(db, BACKUP, until=until, delegate=FINANCE)
    workflow_id = pay(db)
    run(db, pay_registry)
    assert open_approval_of(db, workflow_id).approvers == [BACKUP]


@pytest.mark.parametrize(
    "delegate, until_days, problem",
    [
        (FINANCE, 1, "delegate: must be someone else"),
        ("nobody@example.com", 1, "has no account"),
        (REQUESTER, 1, "may not answer requests"),
        (DEPUTY, -1, "until: must be in the future"),
        (DEPUTY, 400, "until: at most 366 days"),
    ],
)
def test_a_bad_setting_is_refused_and_nothing_is_stored(
    db: Database,
    people: None,
    delegate: str,
    until_days: int,
    problem: str,
) -> None:
    with pytest.raises(InvalidDelegation, match=problem):
        delegation.set_out_of_office(
            db, FINANCE, delegate=delegate, until=utcnow() + timedelta(days=until_days)
        )
    assert delegation.out_of_office_of(db, FINANCE) is None


def test_only_an_admin_sets_someone_elses_and_never_across_tenants(db: Database, people: None) -> None:
    from core.tenants.registry import create_tenant

    until = utcnow() + timedelta(days=1)
    with pytest.raises(NotAuthorized, match="users:manage"):
        delegation.set_out_of_office(db, DEPUTY, person=FINANCE, until=until, delegate=DEPUTY)
    delegation.set_out_of_office(db, ADMIN, person=FINANCE, until=until, delegate=DEPUTY)
    assert delegation.out_of_office_of(db, FINANCE) is not None
    create_tenant(db, "acme", name="Acme")
    add_user(db, "amy@acme.example", role="approver", tenant="acme")
    with pytest.raises(InvalidDelegation, match="not in amy@acme.example's tenant"):
        delegation.set_out_of_office(db, "amy@acme.example", until=until, delegate=DEPUTY)


def test_the_backup_is_asked_when_nobody_answered_within_the_share(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    workflow_id = pay(db, timeout="1h", backup={"to": BACKUP, "after": "50%"})
    run(db, pay_registry)
    request = open_approval_of(db, workflow_id)
    with db.read() as session:
        planned = session.get(ApprovalBackup, request.id)
        assert planned is not None
        assert abs((planned.due_at - request.created_at).total_seconds() - 1800) < 1
    engine = ApprovalEngine(db)
    assert engine.expire_due() == 0  # not yet
    next_wake = engine.next_expiry()
    assert next_wake is not None and next_wake <= request.created_at + timedelta(minutes=31)
    with db.session() as session:
        session.execute(update(ApprovalBackup).values(due_at=utcnow() - timedelta(seconds=1)))
    assert engine.expire_due() == 1
    assert engine.expire_due() == 0  # asked once
    assert open_approval_of(db, workflow_id).approvers == [FINANCE, BACKUP]
    [asked] = events(db, workflow_id, "approval.backup_asked")
    assert asked.data["backup"] == [BACKUP] and asked.data["unanswered"] == [FINANCE]
    assert recipients(db, request.id) == [BACKUP, FINANCE]
    ApprovalEngine(db).respond_to_approval(request.id, BACKUP, "approve")
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"


def test_no_backup_once_someone_answered(
    db: Database,
    pay_registry: ToolRegistry,
    people: None,
) -> None:
    workflow_id = pay(
        db,
        timeout="1h",
        backup={"to": BACKUP, "after": "10%"},
        required_approvers=[DEPUTY],
        approval_threshold=2,
    )
    run(db, pay_registry)
    request = open_approval_of(db, workflow_id)
    ApprovalEngine(db).respond_to_approval(request.id, FINANCE, "approve")
    with db.session() as session:
        session.execute(update(ApprovalBackup).values(due_at=utcnow() - timedelta(seconds=1)))
    assert ApprovalEngine(db).expire_due() == 0
    assert BACKUP not in open_approval_of(db, workflow_id).approvers
    assert events(db, workflow_id, "approval.backup_asked") == []


def test_a_later_budget_level_addressed_to_someone_away_goes_to_their_delegate(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    delegation.set_out_of_office(db, BACKUP, until=utcnow() + timedelta(days=1), delegate=DEPUTY)
    workflow_id = pay(
        db,
        approval_type="budget",
        levels=[{"min_amount": 0, "approvers": [FINANCE]}, {"min_amount": 5, "approvers": [BACKUP]}],
    )
    run(db, pay_registry)
    request = open_approval_of(db, workflow_id)
    assert request.approvers == [FINANCE]
    ApprovalEngine(db).respond_to_approval(request.id, FINANCE, "approve")
    moved = open_approval_of(db, workflow_id)
    assert (moved.level, moved.approvers) == (1, [DEPUTY])
    [event] = events(db, workflow_id, "approval.delegated")
    assert (event.data["from"], event.data["to"], event.data["level"]) == (BACKUP, DEPUTY, 1)
    ApprovalEngine(db).respond_to_approval(request.id, DEPUTY, "approve")
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"


def test_a_disabled_delegate_is_refused_and_never_handed_a_request(
    db: Database,
    pay_registry: ToolRegistry,
    people: None,
) -> None:
    from core.identity.account_state import disable_user

    delegation.set_out_of_office(db, FINANCE, until=utcnow() + timedelta(days=1), delegate=DEPUTY)
    disable_user(db, DEPUTY, actor=ADMIN)
    with pytest.raises(InvalidDelegation, match="account is disabled"):
        delegation.set_out_of_office(db, BACKUP, until=utcnow() + timedelta(days=1), delegate=DEPUTY)
    workflow_id = pay(db)
    run(db, pay_registry)
    assert open_approval_of(db, workflow_id).approvers == [FINANCE]
    assert events(db, workflow_id, "approval.delegated") == []


@pytest.mark.parametrize("role", ["viewer", "service"])
def test_a_delegate_who_may_no_longer_answer_is_skipped_and_the_person_asked(
    db: Database,
    pay_registry: ToolRegistry,
    people: None,
    role: str,
) -> None:
    """The delegate is checked when a request is addressed, not only when the setting is
    made: one whose role no longer answers is skipped (no approval.delegated)."""
    delegation.set_out_of_office(db, FINANCE, until=utcnow() + timedelta(days=1), delegate=DEPUTY)
    add_user(db, DEPUTY, role=role)
    workflow_id = pay(db)
    run(db, pay_registry)
    request = open_approval_of(db, workflow_id)
    assert request.approvers == [FINANCE]
    assert recipients(db, request.id) == [FINANCE]
    assert events(db, workflow_id, "approval.delegated") == []
    assert events(db, workflow_id, "approval.escalated") == []
    ApprovalEngine(db).respond_to_approval(request.id, FINANCE, "approve")
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    # Answering again, the delegate is asked again.
    add_user(db, DEPUTY, role="approver")
    second = pay(db)
    run(db, pay_registry)
    assert open_approval_of(db, second).approvers == [DEPUTY]


def test_the_audit_trail_holds_with_delegation_and_backups(
    db: Database, pay_registry: ToolRegistry, people: None
) -> None:
    from core.records.trail_verify import first_break, verify

    delegation.set_out_of_office(db, FINANCE, until=utcnow() + timedelta(days=1), delegate=DEPUTY)
    workflow_id = pay(db, timeout="1h", backup={"to": BACKUP, "after": "50%"})
    run(db, pay_registry)
    with db.session() as session:
        session.execute(update(ApprovalBackup).values(due_at=utcnow() - timedelta(seconds=1)))
    assert ApprovalEngine(db).expire_due() == 1
    delegation.clear_out_of_office(db, FINANCE)
    assert [e.event_type for e in events(db, workflow_id, "approval.delegated")] == ["approval.delegated"]
    assert first_break(verify(db, ADMIN)) is None
    assert first_break(verify(db, ADMIN, workflow_id)) is None


def test_an_escalation_to_someone_away_goes_to_their_delegate(
    db: Database,
    pay_registry: ToolRegistry,
    calls: Calls,
    people: None,
) -> None:
    """The next level of an ``escalate_to`` chain is addressed like a first level: a
    person away is replaced by their delegate, who is notified and answers; the call
    the delegate approves is the call that runs."""
    delegation.set_out_of_office(db, BACKUP, until=utcnow() + timedelta(days=1), delegate=DEPUTY)
    workflow_id = pay(db, timeout="1h", on_timeout="escalate", escalate_to=[[BACKUP]])
    run(db, pay_registry)
    request = open_approval_of(db, workflow_id)
    assert request.approvers == [FINANCE]
    with db.session() as session:
        session.get_one(ApprovalRequest, request.id).expires_at = utcnow() - timedelta(seconds=1)
    assert ApprovalEngine(db).expire_due() == 1
    escalated = open_approval_of(db, workflow_id)
    assert escalated.approvers == [DEPUTY]
    assert DEPUTY in recipients(db, request.id) and BACKUP not in recipients(db, request.id)
    [event] = events(db, workflow_id, "approval.delegated")
    assert (event.data["from"], event.data["to"]) == (BACKUP, DEPUTY)
    with pytest.raises(NotAuthorized):
        ApprovalEngine(db).respond_to_approval(request.id, BACKUP, "approve")
    ApprovalEngine(db).respond_to_approval(request.id, DEPUTY, "approve")
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [{"amount": 10, "currency": "USD", "note": "n"}]
