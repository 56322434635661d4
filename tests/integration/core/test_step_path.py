"""The hot path (core.engine.step_path) on SQLite and PostgreSQL: a plain step's outcome and
the next step's start commit together only while the workflow is as the runner left
it; otherwise nothing of it is kept and the general path decides."""

from __future__ import annotations

import math
import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text, update

from core.engine import workflows as ops
from core.engine.claim_queue import claim_workflows
from core.engine.runner import Runner, claim_next_workflow
from core.engine.tools import ToolRegistry
from core.store.db import Database
from core.store.tables import Workflow, utcnow
from tests.helpers.engine import (
    Calls,
    accounts,
    events,
    run,
    start,
    status,
    step_runs,
    tool,
    wait_until,
)

OPS = "ops@example.com"


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    accounts(db, "admin", OPS)


def chain(middle: str) -> list[dict[str, Any]]:
    """a, then the tool under test (started by the hot path), then c and d."""
    return [tool("a"), {"name": "b", "type": "tool", "tool": middle}, tool("c"), tool("d")]


def test_a_chain_records_each_step_once_with_its_own_key(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id = start(db, [tool(f"s{i}") for i in range(6)])
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    runs = step_runs(db, workflow_id)
    assert [(r.step_index, r.status, r.attempt) for r in runs] == [(i, "completed", 1) for i in range(6)]
    assert [r.idempotency_key for r in runs] == [f"{workflow_id}/{r.id}" for r in runs]
    assert [c["key"] for c in calls.of("do")] == [r.idempotency_key for r in runs]
    started = events(db, workflow_id, "step.started")
    assert [
        (e.step_name, e.data["step_run_id"], e.data["idempotency_key"], e.data["index"]) for e in started
    ] == [(f"s{i}", r.id, r.idempotency_key, i) for i, r in enumerate(runs)]
    completed = events(db, workflow_id, "step.completed")
    assert [e.data["step_run_id"] for e in completed] == [r.id for r in runs]
    assert completed[2].before == {"current_step": 2, "step_outputs": {}}
    assert completed[2].after["current_step"] == 3
    assert started[1].before is None and started[1].after is None  # SQL NULL, not JSON null


def test_a_pause_during_a_step_keeps_its_outcome_and_starts_nothing(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    @registry.register("pauses")
    def pauses(idempotency_key: str) -> dict[str, Any]:
        calls.add("pauses", key=idempotency_key)
        ops.pause_workflow(db, workflow_id, OPS, "hold on")
        return {"paused": True}

    workflow_id = start(db, chain("pauses"))
    run(db, registry)
    assert status(db, workflow_id) == "paused"
    assert [(r.step_name, r.status) for r in step_runs(db, workflow_id)] == [
        ("a", "completed"),
        ("b", "completed"),
    ]
    assert [e.step_name for e in events(db, workflow_id, "step.started")] == ["a", "b"]
    ops.resume_workflow(db, workflow_id, OPS)
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["a", "c", "d"]
    assert len(calls.of("pauses")) == 1
    assert [e.step_name for e in events(db, workflow_id, "step.completed")] == ["a", "b", "c", "d"]


def test_a_cancel_during_a_step_starts_nothing_after_it(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    @registry.register("cancels")
    def cancels(idempotency_key: str) -> dict[str, Any]:
        calls.add("cancels", key=idempotency_key)
        ops.cancel_workflow(db, workflow_id, OPS, "stop")
        return {"late": True}

    workflow_id = start(db, chain("cancels"))
    run(db, registry)
    assert status(db, workflow_id) == "cancelled"
    assert [r.step_name for r in step_runs(db, workflow_id)] == ["a", "b"]
    # What b did is on record (as the general path records it); c never starts.
    assert [e.step_name for e in events(db, workflow_id, "step.completed")] == ["a", "b"]
    assert "c" not in [e.step_name for e in events(db, workflow_id, "step.started")]
    assert [c["label"] for c in calls.of("do")] == ["a"]


def test_a_lease_lost_mid_chain_keeps_nothing_of_the_hot_path(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    stolen = {"done": False}

    @registry.register("stalls")
    def stalls(idempotency_key: str) -> dict[str, Any]:
        calls.add("stalls", key=idempotency_key)
        if not stolen["done"]:
            # While this runner stalls its lease lapses and another runner claims it.
            stolen["done"] = True
            with db.session() as session:
                session.execute(
                    update(Workflow)
                    .where(Workflow.id == workflow_id)
                    .values(lease_owner="thief", lease_expires_at=utcnow() - timedelta(seconds=1))
                )
        return {"ok": True}

    workflow_id = start(db, chain("stalls"))
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    # b ran twice under one key (the interrupted step runs again, as after a
    # crash); its first outcome and the start of c that would have come with it
    # were not written: every step has one run and one completion.
    keys = [c["key"] for c in calls.of("stalls")]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert [r.step_name for r in step_runs(db, workflow_id)] == ["a", "b", "c", "d"]
    assert [e.step_name for e in events(db, workflow_id, "step.completed")] == ["a", "b", "c", "d"]
    assert [c["label"] for c in calls.of("do")] == ["a", "c", "d"]


def test_the_next_step_reads_the_context_as_merged_between_steps(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    from core.orchestrator import StateManager

    @registry.register("merges")
    def merges(idempotency_key: str) -> dict[str, Any]:
        calls.add("merges", key=idempotency_key)
        StateManager(db).update_workflow_state(workflow_id, {"region": "eu-west"}, actor=OPS)
        return {}

    workflow_id = start(
        db,
        [
            tool("a"),
            {"name": "b", "type": "tool", "tool": "merges"},
            {"name": "c", "type": "tool", "tool": "do", "args": {"label": "c", "value": "${context.region}"}},
        ],
        input_data={"region": "us-east"},
    )
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [(c["label"], c["value"]) for c in calls.of("do")] == [("a", None), ("c", "eu-west")]


# -- the claim's slice: handed back only when another workflow waits ------------------


def test_a_claim_hands_its_workflow_back_when_another_waits(
    db: Database, registry: ToolRegistry, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_STEPS_PER_CLAIM", "3")
    first = start(db, [tool(f"a{i}") for i in range(6)])
    second = start(db, [tool(f"b{i}") for i in range(6)])
    run(db, registry)
    assert {status(db, first), status(db, second)} == {"completed"}
    # Three steps of one, then three of the other: neither waits for the other's end.
    assert [c["label"][0] for c in calls.of("do")] == list("aaabbbaaabbb")


def test_a_claim_alone_keeps_its_workflow_past_the_slice(
    db: Database, registry: ToolRegistry, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_STEPS_PER_CLAIM", "3")
    workflow_id = start(db, [tool(f"s{i}") for i in range(10)])
    hand_backs: list[str] = []

    def watch(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE workflows SET runnable_at"):
            hand_backs.append(statement)

    for engine in db.engines:
        event.listen(engine, "before_cursor_execute", watch)
    try:
        run(db, registry)
    finally:
        for engine in db.engines:
            event.remove(engine, "before_cursor_execute", watch)
    assert status(db, workflow_id) == "completed"
    assert len(calls.of("do")) == 10
    assert hand_backs == []  # one claim ran all ten steps


# -- batch claims (core.engine.claim_queue) ----------------------------------------------


def test_one_claim_leases_a_batch_oldest_first_and_others_take_the_rest(db: Database) -> None:
    ids = [start(db, [tool("a")]) for _ in range(5)]
    assert claim_workflows(db, "one", 30, 3) == ids[:3]
    assert claim_workflows(db, "two", 30, 3) == ids[3:]
    assert claim_workflows(db, "three", 30, 3) == []
    owners = {w: ops.get_workflow(db, w).lease_owner for w in ids}
    assert owners == {**dict.fromkeys(ids[:3], "one"), **dict.fromkeys(ids[3:], "two")}


def test_a_runner_renews_and_hands_back_what_it_queued(
    db: Database, registry: ToolRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_CLAIM_BATCH", "3")
    ids = [start(db, [tool("a")]) for _ in range(3)]
    runner = Runner(db, registry=registry, runner_id="batcher", lease_seconds=30)
    assert runner.claims.take(db, runner.runner_id, 30) == ids[0]
    assert runner.claims.held() == ids[1:]
    with db.session() as session:  # the leases would run out soon
        session.execute(update(Workflow).values(lease_expires_at=utcnow() + timedelta(seconds=1)))
    runner.beat()
    for workflow_id in ids[1:]:
        expires = ops.get_workflow(db, workflow_id).lease_expires_at
        assert expires is not None and expires > utcnow() + timedelta(seconds=20)
    assert claim_next_workflow(db, "other", 30) is None  # all three are this runner's
    runner.stop()  # never started: what it queued goes back, what it runs stays
    assert [ops.get_workflow(db, w).lease_owner for w in ids] == ["batcher", None, None]
    assert claim_workflows(db, "other", 30, 5) == ids[1:]


def test_batched_runners_run_every_workflow_once(
    db: Database, registry: ToolRegistry, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_CLAIM_BATCH", "4")
    ids = [start(db, [tool(f"w{n}-a"), tool(f"w{n}-b")]) for n in range(9)]
    run(db, registry)
    assert {status(db, w) for w in ids} == {"completed"}
    labels = [c["label"] for c in calls.of("do")]
    assert sorted(labels) == sorted(f"w{n}-{s}" for n in range(9) for s in "ab")


# -- the trail's head, read while the lock was awaited --------------------------------


def test_an_entry_appended_while_the_lock_was_awaited_sends_the_step_down_the_general_path(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    """PostgreSQL reads the trail's head with the statement that takes the workflow's
    lock, so a head another writer moved while that statement waited is stale: the step
    statement must see it and write nothing (the general path then seals after it).
    SQLite's writers are serialised before the head is read: the same story holds."""
    from core.records.trail_verify import require_intact, verify
    from core.store.events import add_event

    holding = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with db.session() as session:
                session.execute(select(Workflow.id).where(Workflow.id == workflow_id).with_for_update())
                holding.set()
                if db.is_postgres:  # let the runner's locking statement queue behind us
                    wait_until(lambda: _lock_waiters(db) > 0, what="the runner to wait for the lock")
                add_event(session, "workflow.note", OPS, workflow_id=workflow_id, data={"note": "meanwhile"})
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
            holding.set()

    thread = threading.Thread(target=writer)

    @registry.register("contended")
    def contended(idempotency_key: str) -> dict[str, Any]:
        calls.add("contended", key=idempotency_key)
        thread.start()
        holding.wait(10)
        return {"ok": True}

    workflow_id = start(db, chain("contended"))
    run(db, registry)
    thread.join(10)
    assert errors == []
    assert status(db, workflow_id) == "completed"
    assert len(calls.of("contended")) == 1
    assert [e.step_name for e in events(db, workflow_id, "step.completed")] == ["a", "b", "c", "d"]
    assert len(events(db, workflow_id, "workflow.note")) == 1
    require_intact(verify(db, OPS, workflow_id))


def _lock_waiters(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def test_a_run_no_longer_running_gets_nothing_written_by_the_hot_path(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    """The step statement writes all or nothing (on PostgreSQL it is committed unseen,
    with its COMMIT, in one round trip): the outcome of a run whose status changed
    under the step (here by hand, not through an operation that would also move the
    workflow) is not recorded, and nothing of the next start is written."""
    from core.store.tables import StepRun

    @registry.register("undone")
    def undone(idempotency_key: str) -> dict[str, Any]:
        calls.add("undone", key=idempotency_key)
        with db.session() as session:  # the run only, not the workflow's row
            session.execute(
                update(StepRun).where(StepRun.idempotency_key == idempotency_key).values(status="rolled_back")
            )
        return {"late": True}

    workflow_id = start(db, chain("undone"))
    run(db, registry)
    runs = step_runs(db, workflow_id)
    assert [(r.step_name, r.status) for r in runs] == [("a", "completed"), ("b", "rolled_back")]
    assert runs[1].output in (None, {}) and runs[1].finished_at is None
    workflow = ops.get_workflow(db, workflow_id)
    assert (workflow.current_step, workflow.current_step_run_id) == (1, runs[1].id)
    assert [e.step_name for e in events(db, workflow_id, "step.completed")] == ["a"]
    assert [e.step_name for e in events(db, workflow_id, "step.started")] == ["a", "b"]
    assert [c["label"] for c in calls.of("do")] == ["a"]
    # A current run the engine did not leave behind is not run again on every claim:
    # the workflow fails, naming it, and the tool ran once.
    assert workflow.status == "failed"
    assert f"current run {runs[1].id} is rolled_back" in (workflow.error or "")
    assert len(calls.of("undone")) == 1


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"deeper": value}
    return value


@pytest.mark.parametrize(
    ("output", "where"),
    [
        ({"note": "a\x00b"}, "output.note: contains a NUL character"),
        ({"a\x00": 1}, "output: a key contains a NUL character"),
        ({"score": [1.0, math.nan]}, r"output.score\[1\]: nan is not a JSON number"),
        (_nested(500), "output: nested deeper than 64 levels"),
    ],
    ids=["nul", "nul-key", "nan", "too-deep"],
)
def test_an_output_no_database_can_store_fails_its_step_once_naming_where(
    db: Database, registry: ToolRegistry, calls: Calls, output: dict[str, Any], where: str
) -> None:
    """A tool's output is input: refused by name, the same on SQLite (which would have
    stored it) and PostgreSQL (whose driver refused it at commit, and the step ran
    again), before anything of it is written; the tool is not called again."""

    @registry.register("hostile")
    def hostile(idempotency_key: str) -> dict[str, Any]:
        calls.add("hostile", key=idempotency_key)
        return output

    workflow_id = start(db, chain("hostile"))
    run(db, registry)
    assert status(db, workflow_id) == "failed"
    assert len(calls.of("hostile")) == 1
    runs = step_runs(db, workflow_id)
    assert [(r.step_name, r.status) for r in runs] == [("a", "completed"), ("b", "failed")]
    assert runs[1].output in (None, {})
    assert re.search(where, runs[1].error or ""), runs[1].error
    assert "The step's output cannot be stored" in (runs[1].error or "")
    assert [c["label"] for c in calls.of("do")] == ["a"]
