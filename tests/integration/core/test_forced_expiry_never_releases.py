"""Forcing a request's expiry never releases a call (SQLite and PostgreSQL).

Where the deadline rule approves (``on_expiry: approve``), forcing the expiry early
would run the call with nobody having approved it: it is refused for everyone,
admins and the approvers asked included, and the request stays open. The deadline
itself still approves when it passes; forcing still escalates and still expires a
request that fails closed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidTransition
from core.engine.tools import ToolRegistry
from core.store.db import Database
from core.store.tables import ApprovalRequest, utcnow
from tests.helpers.approved_calls import FINANCE, PROPOSED, waiting
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.approved_calls import run as run_payments
from tests.helpers.engine import Calls, accounts, events, status

ADMIN = "admin@example.com"
APPROVE_ON_EXPIRY = {"timeout": "4h", "on_expiry": "approve"}


@pytest.fixture
def pay_registry(calls: Calls) -> ToolRegistry:
    return _pay_registry(calls)


@pytest.mark.parametrize(
    "config",
    [APPROVE_ON_EXPIRY, {"timeout": "4h", "on_timeout": "approve"}],
    ids=["on_expiry", "on_timeout"],
)
@pytest.mark.parametrize("actor", [ADMIN, FINANCE], ids=["admin", "asked"])
def test_forcing_an_expiry_that_would_approve_is_refused(
    db: Database, pay_registry: ToolRegistry, calls: Calls, actor: str, config: dict[str, str]
) -> None:
    accounts(db, "admin", ADMIN)
    accounts(db, "approver", FINANCE)
    workflow_id, approval = waiting(db, pay_registry, **config)
    with pytest.raises(InvalidTransition, match=r"would run the call without anyone approving it") as refused:
        ApprovalEngine(db).expire_approval(approval.id, actor)
    assert "on_expiry: approve" in str(refused.value)
    still = ApprovalEngine(db).get(approval.id)
    assert (still.status, still.decided_by, still.released_call) == ("pending", None, None)
    assert events(db, workflow_id, "approval.expired") == []
    run_payments(db, pay_registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("pay") == []


def test_the_deadline_itself_still_approves(db: Database, pay_registry: ToolRegistry, calls: Calls) -> None:
    workflow_id, approval = waiting(db, pay_registry, **APPROVE_ON_EXPIRY)
    with db.session() as session:
        session.get_one(ApprovalRequest, approval.id).expires_at = utcnow() - timedelta(seconds=1)
    run_payments(db, pay_registry)  # the runner's sweep applies the deadline, then runs the step
    decided = ApprovalEngine(db).get(approval.id)
    assert (decided.status, decided.decided_by) == ("approved", "system:timeout")
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [PROPOSED]


def test_forcing_still_escalates_then_refuses_the_last_level_that_would_approve(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    accounts(db, "admin", ADMIN)
    workflow_id, approval = waiting(
        db, pay_registry, timeout="4h", escalate_to="manager@example.com", on_expiry="approve"
    )
    escalated = ApprovalEngine(db).expire_approval(approval.id, ADMIN)
    assert (escalated.status, escalated.approvers) == ("pending", ["manager@example.com"])
    with pytest.raises(InvalidTransition, match="without anyone approving it"):
        ApprovalEngine(db).expire_approval(approval.id, ADMIN)
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    run_payments(db, pay_registry)
    assert calls.of("pay") == []


def test_forcing_an_expiry_that_rejects_still_works(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    accounts(db, "admin", ADMIN)
    workflow_id, approval = waiting(db, pay_registry, timeout="4h", on_expiry="reject")
    assert ApprovalEngine(db).expire_approval(approval.id, ADMIN).status == "expired"
    run_payments(db, pay_registry)
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []
