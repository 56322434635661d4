"""Escalation chains and the declared final expiry, on SQLite and PostgreSQL.

``escalate_to: [manager, director, admins]``: each level takes over when the
previous one's timeout passes; the last expiry does what ``on_expiry`` says,
failing closed (reject) unless it says approve, which releases exactly the
proposed call through the released-call path and the executor's check.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.base.errors import NotAuthorized
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalReminder, ApprovalRequest, WorkflowEvent, utcnow
from tests.helpers.approved_calls import PROPOSED, waiting
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.engine import Calls, events, notifications, run, status

BOSS = "boss@example.com"
MANAGER = "manager@example.com"
DIRECTOR = "director@example.com"
CHAIN = [MANAGER, DIRECTOR, "admins"]


@pytest.fixture
def pay_registry(calls: Calls) -> ToolRegistry:
    return _pay_registry(calls)


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    add_user(db, "agent@example.com", role="service")
    for person in (BOSS, MANAGER, DIRECTOR, "finance@example.com"):
        add_user(db, person, role="approver")
    add_user(db, "root@example.com", role="admin")


def ask(db: Database, **config: Any) -> ApprovalRequest:
    config.setdefault("requested_from", BOSS)
    config.setdefault("channels", ["email"])
    return ApprovalEngine(db).request_approval(
        None, "Do the thing", "why", "binary", requested_by="agent@example.com", config=config
    )


def pass_deadline(db: Database, approval_id: str) -> None:
    with db.session() as session:
        session.get_one(ApprovalRequest, approval_id).expires_at = utcnow() - timedelta(seconds=1)


def approval_events(db: Database, approval_id: str, kind: str) -> list[WorkflowEvent]:
    with db.read() as session:
        return list(
            session.scalars(
                select(WorkflowEvent)
                .where(WorkflowEvent.approval_id == approval_id, WorkflowEvent.event_type == kind)
                .order_by(WorkflowEvent.id)
            )
        )


def test_each_level_takes_over_when_the_previous_times_out_then_it_fails_closed(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(db, timeout="2h", escalate_to=CHAIN)
    asked = []
    for _ in CHAIN:
        pass_deadline(db, request.id)
        assert engine.expire_due() == 1
        now = engine.get(request.id)
        assert now.status == "pending" and now.expires_at is not None and now.expires_at > utcnow()
        asked.append(now.approvers)
    assert asked == [[MANAGER], [DIRECTOR], ["admins"]]
    # Only the level now asked may answer: the boss and the manager are out.
    for former in (BOSS, MANAGER):
        with pytest.raises(NotAuthorized):
            engine.respond_to_approval(request.id, former, "approve")
    assert [e.data["escalation"] for e in approval_events(db, request.id, "approval.escalated")] == [1, 2, 3]
    kinds = [k for k, _, _ in notifications(db, request.id)]
    assert {"approval.escalated", "approval.escalated.2", "approval.escalated.3"} <= set(kinds)
    pass_deadline(db, request.id)
    assert engine.expire_due() == 1
    final = engine.get(request.id)
    assert (final.status, final.decided_by) == ("expired", "system:timeout")
    [expired] = approval_events(db, request.id, "approval.expired")
    assert expired.data["on_expiry"] == "reject" and expired.data["escalations"] == 3


def test_a_level_answering_in_time_decides(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(db, timeout="2h", escalate_to=CHAIN)
    pass_deadline(db, request.id)
    engine.expire_due()
    assert engine.respond_to_approval(request.id, MANAGER, "approve").status == "approved"
    assert engine.expire_due() == 0


def test_runners_racing_on_one_deadline_escalate_it_once(db: Database) -> None:
    request = ask(db, timeout="2h", escalate_to=CHAIN)
    pass_deadline(db, request.id)
    runners = [Database(db.url) for _ in range(5)]
    start = threading.Barrier(len(runners))
    done: list[int] = []
    errors: list[BaseException] = []

    def sweep(own: Database) -> None:
        try:
            start.wait()
            done.append(ApprovalEngine(own).expire_due())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(own,)) for own in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for own in runners:
        own.dispose()
    assert errors == []
    assert sum(done) == 1
    now = ApprovalEngine(db).get(request.id)
    assert (now.escalations, now.approvers) == (1, [MANAGER])


def test_each_level_gets_its_own_reminders(db: Database) -> None:
    request = ask(db, timeout="2h", escalate_to=[MANAGER], remind=["50%"])
    pass_deadline(db, request.id)
    ApprovalEngine(db).expire_due()
    with db.read() as session:
        rows = session.scalars(
            select(ApprovalReminder)
            .where(ApprovalReminder.approval_id == request.id)
            .order_by(ApprovalReminder.escalation)
        ).all()
        assert [(r.escalation, r.status) for r in rows] == [(0, "due"), (1, "due")]
        fresh = rows[1]
        assert fresh.due_at - (fresh.deadline - timedelta(hours=2)) == timedelta(hours=1)


def test_approve_on_final_expiry_runs_exactly_the_proposed_call(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(
        db, pay_registry, timeout="1h", escalate_to=[MANAGER], on_expiry="approve"
    )
    engine = ApprovalEngine(db)
    pass_deadline(db, approval.id)
    assert engine.expire_due() == 1  # the manager's turn
    run(db, pay_registry)
    assert calls.of("pay") == []
    pass_deadline(db, approval.id)
    assert engine.expire_due() == 1
    decided = engine.get(approval.id)
    assert (decided.status, decided.decided_by) == ("approved", "system:timeout")
    assert decided.released_call is not None and approval.proposed_call is not None
    assert decided.released_call["digest"] == approval.proposed_call["digest"]
    [expired] = events(db, workflow_id, "approval.expired")
    assert expired.data["on_expiry"] == "approve"
    assert expired.data["released_call"]["digest"] == approval.proposed_call["digest"]
    [decision] = events(db, workflow_id, "approval.decided")
    assert decision.data["data"] == {"reason": "approved on expiry", "on_expiry": "approve"}
    assert decision.data["diff"] == []
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [{k: PROPOSED[k] for k in ("amount", "currency", "note")}]


def test_expiry_without_on_expiry_rejects_and_nothing_runs(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, pay_registry, timeout="1h", escalate_to=[MANAGER])
    engine = ApprovalEngine(db)
    for _ in range(2):
        pass_deadline(db, approval.id)
        assert engine.expire_due() == 1
    assert engine.get(approval.id).status == "expired"
    run(db, pay_registry)
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []
