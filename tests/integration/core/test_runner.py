"""The runner on SQLite and PostgreSQL: retries with backoff, step timeouts,
on_reject, pause/resume/cancel/retry, several runners sharing work, and a
decision waking an idle runner at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from core.approvals.engine import ApprovalEngine
from core.base.errors import ApprovalClosed
from core.definitions.approval import ApprovalConfig
from core.engine import workflows as ops
from core.engine.executor import AwaitApproval, TaskRequest
from core.engine.runner import Runner, claim_next_workflow
from core.engine.tools import ToolRegistry
from core.runtime import build_runner
from core.store.db import Database
from core.store.wakeup import CHANNEL
from tests.helpers.engine import (
    Calls,
    accounts,
    approval,
    event_types,
    events,
    open_approval_of,
    run,
    start,
    status,
    step_runs,
    tool,
    wait_until,
)


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """Who acts in these tests has an account (core.identity): ops steers workflows as an admin."""
    accounts(db, "admin", "ops@example.com")


BOSS = "boss@example.com"


def answer(db: Database, workflow_id: str, decision: str = "approve") -> None:
    ApprovalEngine(db).respond_to_approval(open_approval_of(db, workflow_id).id, BOSS, decision)


# -- retries and timeouts ------------------------------------------------------------


@pytest.fixture
def flaky(registry: ToolRegistry, calls: Calls) -> dict[str, int]:
    """A tool that fails as many times as ``failures[label]`` says, then succeeds."""
    failures: dict[str, int] = {}

    @registry.register("flaky")
    def flaky_tool(label: str, idempotency_key: str) -> dict[str, Any]:
        calls.add("flaky", label=label, key=idempotency_key)
        if failures.get(label, 0) > 0:
            failures[label] -= 1
            raise ConnectionError(f"{label}: upstream unavailable")
        return {"ok": label}

    return failures


def test_retry_with_backoff_then_success(
    db: Database, registry: ToolRegistry, calls: Calls, flaky: dict[str, int]
) -> None:
    flaky["charge"] = 2
    workflow_id = start(
        db,
        [
            {
                "name": "charge",
                "type": "tool",
                "tool": "flaky",
                "args": {"label": "charge"},
                "retry": {"attempts": 3, "backoff": "50ms", "factor": 2},
            }
        ],
    )
    run(db, registry)  # waits for the short backoffs
    assert status(db, workflow_id) == "completed"
    attempts = calls.of("flaky")
    assert len(attempts) == 3
    assert len({a["key"] for a in attempts}) == 1  # three attempts of one effect, one key
    retrying = events(db, workflow_id, "step.retry_scheduled")
    assert [(e.data["attempt"], e.data["delay"]) for e in retrying] == [(1, 0.05), (2, 0.1)]
    assert "upstream unavailable" in retrying[0].data["reason"]
    assert [(r.status, r.attempt) for r in step_runs(db, workflow_id)] == [
        ("failed", 1),
        ("failed", 2),
        ("completed", 3),
    ]


def test_retries_exhausted_fail_then_retry_command(
    db: Database, registry: ToolRegistry, calls: Calls, flaky: dict[str, int]
) -> None:
    flaky["charge"] = 2
    workflow_id = start(
        db,
        [
            tool("before"),
            {
                "name": "charge",
                "type": "tool",
                "tool": "flaky",
                "args": {"label": "charge"},
                "retry": {"attempts": 2, "backoff": "10ms"},
            },
            tool("after"),
        ],
    )
    run(db, registry)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "failed"
    assert workflow.error == "Step 'charge' failed: ConnectionError: charge: upstream unavailable"
    assert len(calls.of("flaky")) == 2
    ops.retry_workflow(db, workflow_id, "ops@example.com")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["before", "after"]  # 'before' not run twice
    assert [r.status for r in step_runs(db, workflow_id)] == [
        "completed",
        "failed",
        "failed",
        "completed",
        "completed",
    ]


def test_step_timeout_fails_the_step(db: Database, registry: ToolRegistry) -> None:
    release = threading.Event()

    @registry.register("hang")
    def hang() -> dict[str, Any]:
        release.wait(10)
        return {"late": True}

    workflow_id = start(
        db,
        [
            {
                "name": "slow",
                "type": "tool",
                "tool": "hang",
                "timeout": "200ms",
                "retry": {"max_attempts": 1},
            },  # a timeout is transient
            tool("never"),
        ],
    )
    try:
        run(db, registry)
    finally:
        release.set()
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "failed"
    assert workflow.error == "Step 'slow' failed: TimeoutError: step timed out after 0.2s"
    assert "never" not in workflow.step_outputs


# -- on_reject ---------------------------------------------------------------------------


def test_on_reject_fail_is_the_default(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, [approval("gate"), tool("act")])
    run(db, registry)
    answer(db, workflow_id, "reject")
    run(db, registry)
    workflow = ops.get_workflow(db, workflow_id)
    assert (workflow.status, workflow.error) == ("failed", "Step 'gate': approval rejected.")
    assert calls.of("do") == []
    assert workflow.context["approvals"]["gate"]["status"] == "rejected"


def test_on_reject_skip_goes_on(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(
        db,
        [
            {
                **tool("optional"),
                "requires_approval": True,
                "on_reject": "skip",
                "approval_config": {"requested_from": BOSS},
            },
            tool("always"),
        ],
    )
    run(db, registry)
    answer(db, workflow_id, "reject")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["always"]
    assert [r.status for r in step_runs(db, workflow_id)] == ["skipped", "completed"]


def test_on_reject_goto_jumps_to_the_named_step(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(
        db, [{**approval("gate"), "on_reject": "goto:fallback"}, tool("main"), tool("fallback")]
    )
    run(db, registry)
    answer(db, workflow_id, "reject")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["fallback"]


def test_expired_approval_follows_on_reject(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, [{**approval("gate"), "on_reject": "skip"}, tool("next")])
    run(db, registry)
    ApprovalEngine(db).expire_approval(open_approval_of(db, workflow_id).id, "ops@example.com")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert ops.get_workflow(db, workflow_id).context["approvals"]["gate"]["status"] == "expired"


# -- pause, resume, cancel ----------------------------------------------------------------------


def test_paused_workflow_is_not_run_until_resumed(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, [tool("a"), tool("b")])
    ops.pause_workflow(db, workflow_id, "ops@example.com", "hold on")
    assert run(db, registry) == 0 and calls.of("do") == []
    assert ops.resume_workflow(db, workflow_id, "ops@example.com").status == "running"
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["a", "b"]


def test_decision_while_paused_waits_for_resume(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, [approval("gate"), tool("act")])
    run(db, registry)
    ops.pause_workflow(db, workflow_id, "ops@example.com")
    answer(db, workflow_id, "approve")
    assert status(db, workflow_id) == "paused"  # a decision does not override a pause
    run(db, registry)
    assert calls.of("do") == []
    ops.resume_workflow(db, workflow_id, "ops@example.com")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["act"]


def test_resume_with_the_approval_still_open_goes_back_to_waiting(
    db: Database, registry: ToolRegistry
) -> None:
    workflow_id = start(db, [approval("gate")])
    run(db, registry)
    ops.pause_workflow(db, workflow_id, "ops@example.com")
    assert ops.resume_workflow(db, workflow_id, "ops@example.com").status == "waiting_approval"
    assert len(ApprovalEngine(db).list_pending_approvals(BOSS)) == 1


def test_cancel_cancels_open_approvals(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, [approval("gate"), tool("act")])
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    ops.cancel_workflow(db, workflow_id, "ops@example.com", "obsolete")
    assert ApprovalEngine(db).get(request.id).status == "cancelled"
    with pytest.raises(ApprovalClosed, match="already cancelled"):
        ApprovalEngine(db).respond_to_approval(request.id, BOSS, "approve")
    assert run(db, registry) == 0 and calls.of("do") == []
    assert status(db, workflow_id) == "cancelled"


# -- task steps --------------------------------------------------------------------------------


def test_task_handler_may_ask_a_person_mid_step(db: Database, registry: ToolRegistry) -> None:
    seen: list[dict[str, Any] | None] = []

    def handler(request: TaskRequest) -> dict[str, Any]:
        seen.append(request.decision)
        if request.decision is None:
            raise AwaitApproval(
                ApprovalConfig(requested_from=[BOSS]),
                title="Send the email?",
                proposed_action={"tool": "send_email"},
            )
        return {"sent": request.decision["status"] == "approved"}

    workflow_id = start(db, [{"name": "agent", "type": "task", "task": "write and send"}])
    build_runner(db, registry=registry, task_handler=handler).run_until_idle(max_seconds=30)
    assert status(db, workflow_id) == "waiting_approval"
    request = open_approval_of(db, workflow_id)
    assert (request.title, request.proposed_action["origin"]) == ("Send the email?", "task")
    answer(db, workflow_id, "approve")
    build_runner(db, registry=registry, task_handler=handler).run_until_idle(max_seconds=30)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "completed"
    assert workflow.step_outputs["agent"] == {"sent": True}
    assert [s is None for s in seen] == [True, False]
    assert len(step_runs(db, workflow_id)) == 1  # the same execution of the step, continued


def test_rehearsal_task_runs_its_plan(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(
        db,
        [
            {
                "name": "plan",
                "type": "task",
                "task": "do two things",
                "plan": [
                    {"tool": "do", "args": {"label": "${input.x}"}},
                    {"tool": "do", "args": {"label": "second"}},
                ],
            }
        ],
        input_data={"x": "first"},
    )
    run(db, registry)
    output = ops.get_workflow(db, workflow_id).step_outputs["plan"]
    assert output["rehearsal"] is True and output["result"] == "Rehearsed: do two things"
    keys = [c["key"] for c in calls.of("do")]
    assert [c["label"] for c in calls.of("do")] == ["first", "second"]
    assert keys[0].endswith("/0") and keys[1].endswith("/1")


# -- several runners, wake-ups -------------------------------------------------------------------


def test_several_runners_share_work_each_step_once(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
    background_runner: Callable[..., Runner],
) -> None:
    ids = [start(db, [tool("a", f"{n}:a"), tool("b", f"{n}:b"), tool("c", f"{n}:c")]) for n in range(6)]
    for _ in range(2):
        background_runner(db, registry, concurrency=2, lease_seconds=10)
    wait_until(lambda: all(status(db, w) == "completed" for w in ids), 60, "all completed")
    labels = [c["label"] for c in calls.of("do")]
    assert sorted(labels) == sorted(f"{n}:{s}" for n in range(6) for s in "abc")
    for workflow_id in ids:
        assert event_types(db, workflow_id).count("step.completed") == 3


def test_a_decision_wakes_an_idle_runner(
    db: Database,
    db_url: str,
    registry: ToolRegistry,
    calls: Calls,
    background_runner: Callable[..., Runner],
) -> None:
    workflow_id = start(db, [approval("gate"), tool("act")])
    # Idle runners sleep 30 s here: only a wake-up can finish the workflow in time.
    runner = background_runner(db, registry, idle_wait=30.0, lease_seconds=10)
    wait_until(lambda: status(db, workflow_id) == "waiting_approval", 30, "waiting")
    wait_until(lambda: not runner._active, 30, "runner idle")
    # PostgreSQL: answer through another Database object, as another process would
    # (LISTEN/NOTIFY). SQLite: the in-process signal of the same Database.
    answering_db = Database(db_url) if db.is_postgres else db
    try:
        answer(answering_db, workflow_id)
        wait_until(lambda: status(db, workflow_id) == "completed", 10, "completed after the decision")
    finally:
        if answering_db is not db:
            answering_db.dispose()
    assert [c["label"] for c in calls.of("do")] == ["act"]


def test_a_workflow_locked_when_its_wake_up_came_is_claimed_once_let_go(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
    background_runner: Callable[..., Runner],
) -> None:
    """A claim skips rows another transaction holds (``SKIP LOCKED``): the wake-up that
    announced the workflow is spent by then, and an idle runner must not sleep its whole
    idle wait on it (here 30 s) but try again soon after."""
    if not db.is_postgres:
        pytest.skip("row locks and NOTIFY: PostgreSQL (SQLite writers hold the whole file)")
    workflow_id = start(db, [tool("a")])
    ops.pause_workflow(db, workflow_id, "ops@example.com")
    warm_up = start(db, [tool("warm_up")])
    runner = background_runner(db, registry, idle_wait=30.0, lease_seconds=10)
    wait_until(lambda: status(db, warm_up) == "completed", 30, "runner warmed up")
    wait_until(lambda: not runner._active, 30, "runner idle")
    with db.engine.connect() as holder:
        # A lock the claim's FOR UPDATE conflicts with, and an UPDATE of other columns does not.
        holder.execute(text("SELECT id FROM workflows WHERE id = :id FOR KEY SHARE"), {"id": workflow_id})
        with db.engine.connect() as writer, writer.begin():  # runnable, committed, announced
            writer.execute(
                text("UPDATE workflows SET status = 'running', runnable_at = now() WHERE id = :id"),
                {"id": workflow_id},
            )
            writer.execute(text("SELECT pg_notify(:channel, :id)"), {"channel": CHANNEL, "id": workflow_id})
        time.sleep(0.5)  # the runner woke and skipped the locked row
        assert [c["label"] for c in calls.of("do")] == ["warm_up"]  # it cannot take a locked row
        holder.rollback()  # lets go of the row
    wait_until(lambda: status(db, workflow_id) == "completed", 10, "claimed once the row was let go")
    assert [c["label"] for c in calls.of("do")] == ["warm_up", "a"]


def test_resume_wakes_an_idle_runner(
    db: Database,
    registry: ToolRegistry,
    calls: Calls,
    background_runner: Callable[..., Runner],
) -> None:
    workflow_id = start(db, [tool("a")])
    ops.pause_workflow(db, workflow_id, "ops@example.com")
    warm_up = start(db, [tool("warm_up")])
    background_runner(db, registry, idle_wait=30.0, lease_seconds=10)
    # Once it has finished other work, the runner sleeps: only a wake-up brings it back soon.
    wait_until(lambda: status(db, warm_up) == "completed", 30, "runner warmed up")
    ops.resume_workflow(db, workflow_id, "ops@example.com")
    wait_until(lambda: status(db, workflow_id) == "completed", 10, "completed after resume")
    assert [c["label"] for c in calls.of("do")] == ["warm_up", "a"]


def test_run_until_idle_keeps_the_lease_of_a_step_longer_than_the_lease(
    db: Database, registry: ToolRegistry
) -> None:
    started, release = threading.Event(), threading.Event()

    @registry.register("slow")
    def slow() -> dict[str, Any]:
        started.set()
        release.wait(10)
        return {"slow": True}

    workflow_id = start(db, [{"name": "slow", "type": "tool", "tool": "slow"}])
    worker = build_runner(db, registry=registry, lease_seconds=0.6, runner_id="patient")
    done = threading.Thread(target=worker.run_until_idle, daemon=True)
    done.start()
    try:
        assert started.wait(10)
        threading.Event().wait(1.5)  # well past the 0.6 s lease: only renewal keeps it
        assert claim_next_workflow(db, "intruder", 0.6) is None
        assert ops.get_workflow(db, workflow_id).lease_owner == "patient"
    finally:
        release.set()
        done.join(10)
    assert status(db, workflow_id) == "completed"


@pytest.mark.parametrize("wait_for_retries", [True, False])
def test_run_until_idle_runs_work_that_came_while_it_ran(
    db: Database, registry: ToolRegistry, calls: Calls, wait_for_retries: bool
) -> None:
    """A claim that leased less than a batch is not followed by another claim (it would
    find nothing), but by the idle probe: a workflow started meanwhile is still run."""
    later: list[str] = []

    @registry.register("spawn")
    def spawn() -> dict[str, Any]:
        later.append(start(db, [tool("b", "started meanwhile")]))
        return {}

    first = start(db, [{"name": "spawn", "type": "tool", "tool": "spawn"}])
    runner = build_runner(db, registry=registry, lease_seconds=10)
    assert runner.run_until_idle(wait_for_retries=wait_for_retries, max_seconds=60) == 2
    assert [status(db, w) for w in (first, *later)] == ["completed", "completed"]
    assert [c["label"] for c in calls.of("do")] == ["started meanwhile"]
