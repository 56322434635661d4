"""A veto window never runs its call over an objection (SQLite and PostgreSQL).

A veto is a rejection: nothing runs, whatever a stored config says of
``reject_decides``. An "approve with changes" that has not reached the threshold
when the window ends objects to the call as announced: the window's end rejects
the request (the step follows ``on_reject``) instead of running the original over
it. An approval of the call as announced, or a changed call the threshold
approved in time, runs as before.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from core.approvals.engine import ApprovalEngine
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest, ApprovalResponse, utcnow
from tests.helpers.approved_calls import FINANCE, PROPOSED, waiting
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.approved_calls import run as run_payments
from tests.helpers.engine import Calls, events, status

FINANCE2 = "finance2@example.com"
TWO = {"mode": "veto", "window": "15m", "requested_from": [FINANCE, FINANCE2]}
CHANGED = {"arguments": {"amount": 90, "note": "to the other account"}}


@pytest.fixture
def pay_registry(calls: Calls) -> ToolRegistry:
    return _pay_registry(calls)


@pytest.fixture
def approvers(db: Database) -> None:
    """The two approvers the window is announced to."""
    for email in (FINANCE, FINANCE2):
        add_user(db, email, role="approver")


def end_window(db: Database, approval_id: str) -> None:
    with db.session() as session:
        session.get_one(ApprovalRequest, approval_id).expires_at = utcnow() - timedelta(seconds=1)


def rejected_at_window_end(db: Database, registry: ToolRegistry, approval_id: str) -> dict[str, Any]:
    """End the window, run the runner: the request is rejected by the window's end, releasing
    nothing; the decision's data."""
    end_window(db, approval_id)
    run_payments(db, registry)
    decided = ApprovalEngine(db).get(approval_id)
    assert (decided.status, decided.decided_by, decided.released_call) == (
        "rejected",
        "system:veto-window",
        None,
    )
    assert decided.decision_data is not None
    return decided.decision_data


def stored_config(db: Database, approval_id: str, **changes: Any) -> None:
    """What an older version stored, before the definition check refused it."""
    with db.session() as session:
        request = session.get_one(ApprovalRequest, approval_id)
        config = {**request.config, **changes}
    with db.session() as session:
        session.execute(
            update(ApprovalRequest).where(ApprovalRequest.id == approval_id).values(config=config)
        )


def test_a_veto_decides_even_where_a_stored_config_says_reject_does_not(
    db: Database, pay_registry: ToolRegistry, calls: Calls, approvers: None
) -> None:
    """The tester's r2: two approvers, reject_decides false stored; one vetoes."""
    workflow_id, approval = waiting(db, pay_registry, **TWO)
    stored_config(db, approval.id, reject_decides=False)
    vetoed = ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "reject", comment="VETO: do not pay"
    )
    assert vetoed.status == "rejected"
    end_window(db, approval.id)
    run_payments(db, pay_registry)
    decided = ApprovalEngine(db).get(approval.id)
    assert (decided.status, decided.decided_by) == ("rejected", FINANCE)
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []


def test_the_window_end_never_releases_over_a_recorded_veto(
    db: Database, pay_registry: ToolRegistry, calls: Calls, approvers: None
) -> None:
    """Defence in depth: a reject vote left undecided (as an older version left it) stops
    the window's end from running the call."""
    workflow_id, approval = waiting(db, pay_registry, **TWO)
    with db.session() as session:
        session.add(
            ApprovalResponse(
                approval_id=approval.id,
                approver=FINANCE,
                level=0,
                decision="reject",
                channel="cli",
                comment="VETO",
                data={},
                created_at=utcnow(),
            )
        )
    decided = rejected_at_window_end(db, pay_registry, approval.id)
    assert decided["reason"] == f"vetoed within the window by {FINANCE}"
    [passed] = events(db, workflow_id, "approval.veto_window_passed")
    assert (passed.data["released_call"], passed.data["vetoed_by"]) == (None, [FINANCE])
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []


def test_the_announced_call_does_not_run_over_a_changed_vote(
    db: Database, pay_registry: ToolRegistry, calls: Calls, approvers: None
) -> None:
    """The tester's r4: two approvals run it early; one approver answers "approve with
    changes" (900 -> 90); the window ends before the second approval."""
    workflow_id, approval = waiting(db, pay_registry, approval_threshold=2, **TWO)
    pending = ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "modify", data=CHANGED, comment="only 90"
    )
    assert pending.status == "pending"
    decided = rejected_at_window_end(db, pay_registry, approval.id)
    assert "approved only with changes (by finance@example.com)" in decided["reason"]
    [passed] = events(db, workflow_id, "approval.veto_window_passed")
    assert (passed.data["released_call"], passed.data["changed_by"]) == (None, [FINANCE])
    assert status(db, workflow_id) == "failed"  # on_reject: fail (the default)
    assert calls.of("pay") == []


def test_an_approval_of_the_announced_call_still_runs_it_at_the_window_end(
    db: Database, pay_registry: ToolRegistry, calls: Calls, approvers: None
) -> None:
    workflow_id, approval = waiting(db, pay_registry, approval_threshold=2, **TWO)
    assert ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "approve").status == "pending"
    end_window(db, approval.id)
    run_payments(db, pay_registry)
    decided = ApprovalEngine(db).get(approval.id)
    assert (decided.status, decided.decided_by) == ("approved", "system:veto-window")
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [PROPOSED]


def test_a_changed_call_approved_by_the_threshold_in_time_runs(
    db: Database, pay_registry: ToolRegistry, calls: Calls, approvers: None
) -> None:
    workflow_id, approval = waiting(db, pay_registry, approval_threshold=2, **TWO)
    ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "modify", data=CHANGED)
    decided = ApprovalEngine(db).respond_to_approval(approval.id, FINANCE2, "modify", data=CHANGED)
    assert decided.status == "modified"
    run_payments(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [{**PROPOSED, "amount": 90, "note": "to the other account"}]
