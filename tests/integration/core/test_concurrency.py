"""Answers arriving at the same instant from two threads, on SQLite and PostgreSQL:
exactly one outcome, no vote lost or counted twice, the workflow resumed once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.base.errors import ApprovalClosed, CountersignError
from core.engine import workflows as ops
from core.engine.checkpoints import RollbackResult, rollback
from core.engine.tools import ToolRegistry
from core.store.db import Database
from tests.helpers.engine import (
    Calls,
    accounts,
    approval,
    events,
    open_approval_of,
    run,
    start,
    status,
    tool,
)


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """Who acts in these tests has an account (core.identity): ops rolls back and resumes as an admin."""
    accounts(db, "admin", "ops@example.com")


ROUNDS = 3
PAIR = ["a@example.com", "b@example.com"]


def race(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions in threads released together; each result or the exception raised."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def worker(index: int, action: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = action()
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a racing call did not finish within 30 s"
    return results


def answer(db: Database, approval_id: str, who: str, decision: str = "approve") -> Callable[[], Any]:
    # Each thread uses its own engine, as two web requests would.
    return lambda: ApprovalEngine(db).respond_to_approval(approval_id, who, decision, channel=f"thread:{who}")


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_threshold_two_both_votes_counted_workflow_resumed_once(
    db: Database, registry: ToolRegistry, calls: Calls, round_: int
) -> None:
    workflow_id = start(db, [approval("gate", requested_from=PAIR, approval_threshold=2), tool("act")])
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    results = race(answer(db, request.id, PAIR[0]), answer(db, request.id, PAIR[1]))
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(r.status for r in results) == ["approved", "pending"]
    engine = ApprovalEngine(db)
    assert engine.get(request.id).status == "approved"
    assert sorted(v.approver for v in engine.responses(request.id)) == PAIR
    assert len([e for e in events(db, workflow_id, "approval.decided")]) == 1
    resumed = [
        e
        for e in events(db, workflow_id, "workflow.status_changed")
        if e.before == {"status": "waiting_approval"} and e.after == {"status": "running"}
    ]
    assert len(resumed) == 1
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["act"]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_threshold_one_exactly_one_wins(
    db: Database, registry: ToolRegistry, calls: Calls, round_: int
) -> None:
    workflow_id = start(db, [approval("gate", requested_from=PAIR), tool("act")])
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    # One approves, the other rejects, at the same instant: either may win, never both.
    results = race(answer(db, request.id, PAIR[0], "approve"), answer(db, request.id, PAIR[1], "reject"))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert isinstance(losers[0], ApprovalClosed)
    final = ApprovalEngine(db).get(request.id)
    assert final.status == winners[0].status
    [vote] = ApprovalEngine(db).responses(request.id)
    assert final.decided_by == vote.approver
    assert {"approve": "approved", "reject": "rejected"}[vote.decision] == final.status
    run(db, registry)
    expected = "completed" if final.status == "approved" else "failed"
    assert status(db, workflow_id) == expected
    assert len(calls.of("do")) == (1 if final.status == "approved" else 0)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_same_approver_twice_at_once_counts_once(db: Database, round_: int) -> None:
    request = ApprovalEngine(db).request_approval(
        None, "x", requested_from=PAIR, config={"approval_threshold": 2}
    )
    results = race(answer(db, request.id, PAIR[0]), answer(db, request.id, PAIR[0]))
    assert sorted(type(r).__name__ for r in results) == ["AlreadyVoted", "ApprovalRequest"]
    assert len(ApprovalEngine(db).responses(request.id)) == 1
    assert ApprovalEngine(db).get(request.id).status == "pending"


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_rollback_racing_an_answer_has_one_consistent_outcome(
    db: Database, registry: ToolRegistry, calls: Calls, round_: int
) -> None:
    workflow_id = start(
        db, [tool("prepare", compensate="undo", create_checkpoint=True), approval("gate"), tool("act")]
    )
    run(db, registry)
    request = open_approval_of(db, workflow_id)

    def roll() -> RollbackResult:
        return rollback(
            db, registry, workflow_id, checkpoint_name="after:prepare", reason="race", actor="ops@example.com"
        )

    answered, rolled = race(answer(db, request.id, "boss@example.com"), roll)
    assert isinstance(rolled, RollbackResult), rolled
    final = ApprovalEngine(db).get(request.id)
    if isinstance(answered, CountersignError):
        # The rollback came first: it cancelled the request, so the answer was refused.
        assert isinstance(answered, ApprovalClosed)
        assert rolled.cancelled_approvals == [request.id]
        assert final.status == "cancelled"
        assert ApprovalEngine(db).responses(request.id) == []
    else:
        # The answer came first: the rollback found nothing open to cancel.
        assert answered.status == "approved" and final.status == "approved"
        assert rolled.cancelled_approvals == []
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "paused"
    assert workflow.current_step == 1 and workflow.current_step_run_id is None
    assert len(events(db, workflow_id, "workflow.rolled_back")) == 1
    # Resumed, the gate asks again: the earlier answer does not leak into the new run.
    ops.resume_workflow(db, workflow_id, "ops@example.com")
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert open_approval_of(db, workflow_id).id != request.id
    assert calls.of("do") == [calls.of("do")[0]] and calls.of("undo") == []
