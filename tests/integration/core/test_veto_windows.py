"""Veto windows (``approval_config: {mode: veto, window: 15m}``), SQLite and PostgreSQL.

The call is announced with the time left; a veto within the window is a
rejection; when the window ends unvetoed, the runner releases exactly the
announced call and the executor checks it like any approved call.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from core.approvals.engine import ApprovalEngine
from core.approvals.presentation import request_view
from core.base.errors import ApprovalClosed, InvalidTransition
from core.definitions.calls import call_digest
from core.engine.tools import ToolRegistry
from core.store.db import Database
from core.store.tables import ApprovalRequest, utcnow
from tests.helpers.approved_calls import FINANCE, PROPOSED, waiting
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.engine import Calls, accounts, event_types, events, notifications, run, status

WINDOW = {"mode": "veto", "window": "15m"}


@pytest.fixture
def pay_registry(calls: Calls) -> ToolRegistry:
    return _pay_registry(calls)


def end_window(db: Database, approval_id: str) -> None:
    with db.session() as session:
        session.get_one(ApprovalRequest, approval_id).expires_at = utcnow() - timedelta(seconds=1)


def test_the_call_is_announced_with_the_time_left(db: Database, pay_registry: ToolRegistry) -> None:
    _, approval = waiting(db, pay_registry, **WINDOW)
    assert approval.expires_at is not None
    assert timedelta(minutes=14) < approval.expires_at - utcnow() <= timedelta(minutes=15)
    assert ("approval.requested", "email", FINANCE) in notifications(db, approval.id)
    view = request_view(approval, [])
    assert view.notice is not None
    assert view.notice.endswith("(14m left) unless someone vetoes it")
    assert view.summary_lines()[0] == view.notice


def test_a_veto_within_the_window_is_a_rejection(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, pay_registry, **WINDOW)
    vetoed = ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "reject", comment="wrong invoice")
    assert vetoed.status == "rejected"
    assert ApprovalEngine(db).expire_due() == 0  # nothing left to run at the window's end
    run(db, pay_registry)
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []


def test_the_call_runs_when_the_window_ends_unvetoed(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, pay_registry, **WINDOW)
    run(db, pay_registry)
    assert calls.of("pay") == []  # not before the window ends
    end_window(db, approval.id)
    with pytest.raises(ApprovalClosed):  # too late to veto
        ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "reject")
    run(db, pay_registry)  # the runner's sweep ends the window, then runs the step
    decided = ApprovalEngine(db).get(approval.id)
    assert (decided.status, decided.decided_by) == ("approved", "system:veto-window")
    [passed] = events(db, workflow_id, "approval.veto_window_passed")
    assert approval.proposed_call is not None
    assert passed.data["released_call"]["digest"] == approval.proposed_call["digest"]
    [decision] = events(db, workflow_id, "approval.decided")
    assert decision.data["released_call"]["digest"] == approval.proposed_call["digest"]
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [PROPOSED]


def test_a_call_changed_after_the_window_does_not_run(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, pay_registry, **WINDOW)
    end_window(db, approval.id)
    assert ApprovalEngine(db).expire_due() == 1
    arguments = {**PROPOSED, "amount": 99999}
    forged = {"tool": "pay", "arguments": arguments, "digest": call_digest("pay", arguments)}
    with db.session() as session:
        session.execute(
            update(ApprovalRequest).where(ApprovalRequest.id == approval.id).values(released_call=forged)
        )
    run(db, pay_registry)
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []
    [refused] = events(db, workflow_id, "call.refused")
    assert "audit trail" in refused.data["reason"]
    assert "step.retry_scheduled" not in event_types(db, workflow_id)


def test_a_window_cannot_be_ended_early_by_forcing_its_expiry(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, pay_registry, **WINDOW)
    accounts(db, "admin", "ops@example.com")  # allowed to force an expiry (approvals:reassign)
    with pytest.raises(InvalidTransition, match="is a veto window"):
        ApprovalEngine(db).expire_approval(approval.id, "ops@example.com")
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    run(db, pay_registry)
    assert calls.of("pay") == []
