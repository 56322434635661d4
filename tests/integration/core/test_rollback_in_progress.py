"""A rollback holds its workflow from its first transaction to its last, on SQLite and
PostgreSQL: a second rollback, a resume, a retry or a cancel meanwhile is refused with
``WorkflowBusy`` naming it, runners do not touch it, every compensation runs once, and
a compensation tool is given the undone step's ``output`` only if it takes one.

The races are made deterministic by a compensation that blocks on a
``threading.Event`` (bounded by timeouts) while the other path is tried."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.base.errors import CompensationFailed, WorkflowBusy
from core.engine import workflows as ops
from core.engine.checkpoints import RollbackResult, rollback
from core.engine.tools import ToolRegistry
from core.store.db import Database
from core.store.tables import Workflow, utcnow
from tests.helpers.engine import (
    Calls,
    accounts,
    approval,
    event_types,
    events,
    run,
    start,
    status,
    step_runs,
    tool,
)

ACTOR = "ops@example.com"
WAIT = 20.0  # no wait in these tests is ever this long unless the code under test is wrong


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    accounts(db, "admin", ACTOR)


class SlowUndo:
    """A compensation tool that records its call, says it started, then blocks until released."""

    def __init__(self, registry: ToolRegistry, calls: Calls) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = calls

        @registry.register("slow_undo")
        def slow_undo(output: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
            calls.add("slow_undo", label=output.get("done"), key=idempotency_key)
            self.started.set()
            self.release.wait(WAIT)
            return {"undone": output.get("done")}

    def keys(self) -> Counter[str]:
        return Counter(call["key"] for call in self.calls.of("slow_undo"))


@pytest.fixture
def slow(registry: ToolRegistry, calls: Calls) -> Iterator[SlowUndo]:
    slow = SlowUndo(registry, calls)
    yield slow
    slow.release.set()  # never leave a thread blocked behind a failed assertion


class Background:
    """Run a call in a thread and keep what it returned or raised."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.outcome: Any = None

        def target() -> None:
            try:
                self.outcome = call()
            except Exception as exc:  # noqa: BLE001  (the outcome is what the test checks)
                self.outcome = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def join(self, timeout: float = WAIT) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "still running"
        return self.outcome


def roll_back(db: Database, registry: ToolRegistry, workflow_id: str, reason: str) -> RollbackResult:
    return rollback(db, registry, workflow_id, checkpoint_name="after:a", reason=reason, actor=ACTOR)


def lease_of(db: Database, workflow_id: str) -> str | None:
    return ops.get_workflow(db, workflow_id).lease_owner


def test_two_rollbacks_at_once_compensate_each_step_once(
    db: Database, registry: ToolRegistry, slow: SlowUndo
) -> None:
    workflow_id = start(
        db,
        [
            tool("a", create_checkpoint=True),
            tool("b", compensate="slow_undo"),
            tool("c", compensate="slow_undo"),
        ],
    )
    run(db, registry)
    assert status(db, workflow_id) == "completed"

    first = Background(lambda: roll_back(db, registry, workflow_id, "one"))
    assert slow.started.wait(WAIT)  # the first rollback is compensating c
    second = Background(lambda: roll_back(db, registry, workflow_id, "two"))
    second.thread.join(5)  # refused at once; without the hold it would block in slow_undo
    slow.release.set()
    outcomes = [first.join(), second.join()]

    refused = [o for o in outcomes if isinstance(o, WorkflowBusy)]
    done = [o for o in outcomes if isinstance(o, RollbackResult)]
    assert (len(refused), len(done)) == (1, 1), outcomes
    assert "rolled back again" in str(refused[0])
    assert "rollback to 'after:a' by ops@example.com" in str(refused[0])
    assert sorted(slow.keys().values()) == [1, 1]  # each compensation key called exactly once
    assert [c["step"] for c in done[0].compensations] == ["c", "b"]
    types = event_types(db, workflow_id)
    assert (types.count("rollback.started"), types.count("workflow.rolled_back")) == (1, 1)
    assert types.count("step.compensated") == 2
    workflow = ops.get_workflow(db, workflow_id)
    assert (workflow.status, workflow.current_step, workflow.lease_owner) == ("paused", 1, None)
    assert set(workflow.step_outputs) == {"a"}


def test_resume_retry_cancel_and_runners_wait_for_a_rollback(
    db: Database, registry: ToolRegistry, calls: Calls, slow: SlowUndo
) -> None:
    workflow_id = start(
        db,
        [
            tool("a", create_checkpoint=True),
            tool("b", compensate="slow_undo"),
            approval("gate"),
            tool("c", compensate="slow_undo"),
        ],
    )
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"

    rolling = Background(lambda: roll_back(db, registry, workflow_id, "one"))
    assert slow.started.wait(WAIT)  # compensating b, its approval already cancelled
    with pytest.raises(WorkflowBusy, match="cannot be resumed: a rollback to 'after:a'"):
        ops.resume_workflow(db, workflow_id, ACTOR)
    assert (lease_of(db, workflow_id) or "").startswith("rollback:")
    with pytest.raises(WorkflowBusy, match="cannot be retried"):
        ops.retry_workflow(db, workflow_id, ACTOR)
    with pytest.raises(WorkflowBusy, match="cannot be cancelled"):
        ops.cancel_workflow(db, workflow_id, ACTOR)
    assert run(db, registry) == 0  # a runner finds nothing to do in it
    slow.release.set()
    result = rolling.join()

    assert isinstance(result, RollbackResult), result
    assert [c["step"] for c in result.compensations] == ["b"]
    assert [c["label"] for c in calls.of("do")] == ["a", "b"]  # nothing ran meanwhile
    workflow = ops.get_workflow(db, workflow_id)
    assert (workflow.status, workflow.current_step, workflow.lease_owner) == ("paused", 1, None)
    assert ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id) == []
    types = event_types(db, workflow_id)
    assert "workflow.resumed" not in types
    assert [(e.after or {})["status"] for e in events(db, workflow_id, "workflow.status_changed")][
        -1
    ] == "paused"
    # Once it is over the workflow resumes from the checkpoint as usual.
    ops.resume_workflow(db, workflow_id, ACTOR)
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert [c["label"] for c in calls.of("do")] == ["a", "b", "b"]


def test_a_rollback_whose_process_died_is_continued_once_its_lease_lapses(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    """A crash mid-rollback (simulated: b compensated and recorded, the lease left held and
    lapsed): the next rollback carries on with c only, never compensating b again."""
    failures = {"c": 1}

    @registry.register("undo_once")
    def undo_once(output: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        calls.add("undo_once", label=output["done"], key=idempotency_key)
        if failures.get(output["done"], 0) > 0:
            failures[output["done"]] -= 1
            raise RuntimeError("provider down")
        return {}

    workflow_id = start(
        db,
        [
            tool("a", create_checkpoint=True),
            tool("b", compensate="undo_once"),
            tool("c", compensate="undo_once"),
            tool("d", compensate="undo_once"),
        ],
    )
    run(db, registry)
    with pytest.raises(CompensationFailed):
        roll_back(db, registry, workflow_id, "one")
    assert lease_of(db, workflow_id) is None  # a failed rollback lets go at once
    with db.session() as session:  # as a rollback that died would leave it
        row = session.get_one(Workflow, workflow_id)
        row.lease_owner, row.lease_expires_at = "rollback:dead", utcnow() + timedelta(minutes=1)
    with pytest.raises(WorkflowBusy, match="rolled back again"):
        roll_back(db, registry, workflow_id, "two")
    with db.session() as session:  # its lease lapsed
        session.get_one(Workflow, workflow_id).lease_expires_at = utcnow() - timedelta(seconds=1)
    result = roll_back(db, registry, workflow_id, "three")
    assert [c["step"] for c in result.compensations] == ["c", "b"]
    assert [c["label"] for c in calls.of("undo_once")] == ["d", "c", "c", "b"]
    assert Counter(r.status for r in step_runs(db, workflow_id)) == {"completed": 1, "compensated": 3}


def test_a_rollback_that_lost_its_hold_does_not_restore(
    db: Database, registry: ToolRegistry, slow: SlowUndo
) -> None:
    """Its last transaction checks the workflow is still its own: a rollback whose lease was
    taken over (it lapsed while the process stalled) restores nothing."""
    workflow_id = start(db, [tool("a", create_checkpoint=True), tool("b", compensate="slow_undo")])
    run(db, registry)
    rolling = Background(lambda: roll_back(db, registry, workflow_id, "one"))
    assert slow.started.wait(WAIT)
    with db.session() as session:  # another rollback took the lapsed lease
        session.get_one(Workflow, workflow_id).lease_owner = "rollback:other"
    slow.release.set()
    outcome = rolling.join()
    assert isinstance(outcome, WorkflowBusy), outcome
    assert "lost its hold" in str(outcome)
    assert events(db, workflow_id, "workflow.rolled_back") == []
    assert {r.step_name: r.status for r in step_runs(db, workflow_id)} == {"a": "completed", "b": "completed"}
    assert lease_of(db, workflow_id) == "rollback:other"  # not let go: not its own


def test_a_compensation_tool_without_an_output_parameter(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    """``output`` is passed only to a compensation that takes it (or ``**kwargs``)."""

    @registry.register("release_hold")
    def release_hold(hold: str) -> dict[str, Any]:
        calls.add("release_hold", hold=hold)
        return {"released": hold}

    @registry.register("log_undo")
    def log_undo(**kwargs: Any) -> dict[str, Any]:
        calls.add("log_undo", **kwargs)
        return {}

    workflow_id = start(
        db,
        [
            tool("a", create_checkpoint=True),
            tool("b", compensate={"tool": "release_hold", "args": {"hold": "${output.done}"}}),
            tool("c", compensate={"tool": "log_undo", "args": {"why": "test"}}),
        ],
    )
    run(db, registry)
    result = roll_back(db, registry, workflow_id, "one")
    assert [c["step"] for c in result.compensations] == ["c", "b"]
    assert calls.of("release_hold") == [{"hold": "b"}]
    assert [(c["why"], c["output"]["done"]) for c in calls.of("log_undo")] == [("test", "c")]
    workflow = ops.get_workflow(db, workflow_id)
    assert (workflow.status, set(workflow.step_outputs)) == ("paused", {"a"})
