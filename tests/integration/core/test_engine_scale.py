"""A step costs the same in step 1,000 as in step 1: statements, commits and bytes
per step are fixed, whatever the workflow's length (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from core.channels.registry import store_channel_settings
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import StepRun, Workflow, WorkflowCheckpoint, WorkflowEvent
from tests.helpers.engine import accounts, start

# Statements a step of a plain tool workflow costs in steady state (core.engine.step_path):
# on PostgreSQL one statement (the outcome and the next start, as data-modifying
# CTEs that also check the lease; the commit is counted apart); on SQLite its BEGIN IMMEDIATE,
# INSERT the next step run with its idempotency key, UPDATE workflows (the lease
# check), UPDATE this run, INSERT both events. One commit per step.
# (Before issue 14: 8 and 6; after its first part: 6 and 5.)
# A change that adds one fails here: count it and say why it is worth it.
# Issue 16's tamper-evident trail adds, per step, one SELECT of the workflow's chain head
# (to seal both events before they are written) and, on PostgreSQL, the lock of the
# workflow's row with the next run's id drawn (the chain's lock; core.engine.step_path).
# On PostgreSQL the head is read by that locking statement, and the step statement is
# sent with its COMMIT (psycopg's pipeline mode): two round trips per step. Then the
# head and the next run's id became known from the previous step's own statement
# (core.engine.step_path.Ahead): the lock goes out in the same pipeline as the step
# statement and its COMMIT, one round trip (the lock is not counted: it is sent
# with the step statement; its cursor events are the step statement's).
STATEMENTS_PER_STEP = {"sqlite": 6, "postgresql": 1}
COMMITS_PER_STEP = 1
# A one-step workflow run to its end by ``run_until_idle``, besides the step itself:
# the claim (PostgreSQL: one UPDATE sent with its commit), the start (the locking
# SELECT, then on PostgreSQL one statement drawing the run's id and reading the trail's
# head and the webhook settings, and one writing the start, sent with its commit:
# core.engine.start_path), the finish (one statement sent with its commit and the
# lock: the head and the webhook settings are known from the start,
# core.engine.finish_path) and one idle probe (core.engine.runner.idle_probe: the claim
# leased less than a batch, so no second claim is made to find nothing). SQLite counts
# its BEGINs and runs the writes as separate statements. (Before issue 14's last part:
# 24 round trips on PostgreSQL, the first start and the finish through the ORM; until
# 2026-12-05 the finish read the head and the webhook settings first: 8; then an
# empty second claim ended the run: 7.) On PostgreSQL the start no longer locks the row
# with a SELECT in a transaction of its own first (its BEGIN, the SELECT, then the read):
# one unlocked read without a BEGIN, then the lock (not counted: sent with the start's
# statement) and the start in one round trip (core.engine.start_path.start_unread):
# 5 statements in 5 round trips, was 6 in 7. Then the claim returned that read with
# the lease (core.engine.claim_queue, pg_queries.CLAIM): 4 statements in 4 round trips.
PER_WORKFLOW = {
    "postgresql": {"statements": 4, "commits": 3},
    "sqlite": {"statements": 16, "commits": 3},
}


@pytest.fixture
def noop_registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.register("noop")
    def noop() -> dict[str, Any]:
        return {}

    @registry.register("agentish")
    def agentish(n: int) -> dict[str, Any]:
        return {"result": f"answer {n} " + "x" * 2000}

    return registry


@pytest.fixture
def one_claim(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every step of the workflow in one claim (no hand-back every 50 steps)."""
    monkeypatch.setenv("COUNTERSIGN_STEPS_PER_CLAIM", "100000")
    monkeypatch.setattr("core.engine.executor.CLAIM_TIME_SLICE", 3600.0)
    yield


def steps(count: int, tool: str = "noop") -> list[dict[str, Any]]:
    return [
        {"name": f"s{i}", "type": "tool", "tool": tool, **({"args": {"n": i}} if tool == "agentish" else {})}
        for i in range(count)
    ]


def counted_run(db: Database, registry: ToolRegistry, workflow_id: str) -> Counter[str]:
    """Statements and commits the runner sent while running the workflow to its end."""
    counts: Counter[str] = Counter()

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def commit(*_: Any) -> None:
        counts["commits"] += 1

    engines = db.engines  # the runner's own engine too (PostgreSQL)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "commit", commit)
    try:
        build_runner(db, registry=registry, lease_seconds=30).run_until_idle(max_seconds=120)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", statement)
            event.remove(engine, "commit", commit)
    assert ops.get_workflow(db, workflow_id).status == "completed"
    return counts


def test_statements_and_commits_per_step_are_fixed(
    db: Database, noop_registry: ToolRegistry, one_claim: None
) -> None:
    totals = {}
    for length in (10, 20, 40):
        workflow_id = start(db, steps(length))
        totals[length] = counted_run(db, noop_registry, workflow_id)
    per_step = {kind: (totals[40][kind] - totals[20][kind]) / 20 for kind in ("statements", "commits")}
    assert per_step == {"statements": STATEMENTS_PER_STEP[db.dialect], "commits": COMMITS_PER_STEP}, totals
    # The same at step 10 as at step 30: nothing per step grows with the steps before it.
    assert totals[20]["statements"] - totals[10]["statements"] == per_step["statements"] * 10, totals


def test_a_workflow_costs_a_fixed_number_of_statements_beyond_its_steps(
    db: Database, noop_registry: ToolRegistry, one_claim: None
) -> None:
    """Claim, start, finish and the idle check: what a workflow costs besides its steps."""
    counts = {}
    for length in (1, 2):
        counts[length] = counted_run(db, noop_registry, start(db, steps(length)))
    assert dict(counts[1]) == PER_WORKFLOW[db.dialect], counts
    # Its second step costs what a step costs on the hot path.
    assert counts[2]["statements"] - counts[1]["statements"] == STATEMENTS_PER_STEP[db.dialect], counts
    assert counts[2]["commits"] - counts[1]["commits"] == COMMITS_PER_STEP, counts


def test_stored_webhook_settings_cost_the_finish_no_read(
    db: Database, noop_registry: ToolRegistry, one_claim: None
) -> None:
    """Read with the start, the webhook settings are checked inside the finish statement
    on PostgreSQL (core.engine.finish_path): stored settings, of any shape, cost the
    workflow no round trip; SQLite inserts the webhook's outbox row as a statement."""
    accounts(db, "admin", "ops@example.com")
    store_channel_settings(
        db,
        "webhook",
        enabled=True,
        settings={"urls": ["http://127.0.0.1:9/hook"], "note": "é", "ratio": 1.5, "n": 10**15},
        actor="ops@example.com",
    )
    counts = counted_run(db, noop_registry, start(db, steps(1)))
    extra = {"postgresql": 0, "sqlite": 1}[db.dialect]
    expected = PER_WORKFLOW[db.dialect]
    assert dict(counts) == {**expected, "statements": expected["statements"] + extra}, counts


def stored_bytes(db: Database, workflow_id: str) -> int:
    """Bytes of what the workflow's rows hold: JSON documents as stored text, and text."""

    def size(value: Any) -> int:
        if value is None:
            return 0
        if isinstance(value, str):
            return len(value.encode())
        if isinstance(value, dict | list):
            return len(json.dumps(value, separators=(",", ":")).encode())
        return 8

    total = 0
    with db.read() as session:
        for model, column in (
            (Workflow, Workflow.id),
            (StepRun, StepRun.workflow_id),
            (WorkflowEvent, WorkflowEvent.workflow_id),
            (WorkflowCheckpoint, WorkflowCheckpoint.workflow_id),
        ):
            table = model.__table__  # type: ignore[attr-defined]
            for row in session.execute(select(table).where(column == workflow_id)):
                total += sum(size(value) for value in row)
    return total


@pytest.mark.parametrize("tool", ["noop", "agentish"])
def test_a_long_workflow_grows_the_database_like_many_short_ones(
    db: Database, noop_registry: ToolRegistry, tool: str
) -> None:
    short = start(db, steps(10, tool))
    long = start(db, steps(1000, tool))
    build_runner(db, registry=noop_registry, lease_seconds=30).run_until_idle(max_seconds=600)
    assert {ops.get_workflow(db, w).status for w in (short, long)} == {"completed"}
    short_bytes, long_bytes = stored_bytes(db, short), stored_bytes(db, long)
    assert long_bytes <= 1.3 * 100 * short_bytes, (short_bytes, long_bytes)


def test_checkpoints_do_not_grow_with_the_steps_before_them(
    db: Database, noop_registry: ToolRegistry
) -> None:
    workflow_id = start(db, [{**step, "create_checkpoint": True} for step in steps(60)])
    build_runner(db, registry=noop_registry, lease_seconds=30).run_until_idle(max_seconds=120)
    checkpoints = ops.checkpoints_of(db, workflow_id)
    assert len(checkpoints) == 60
    with db.read() as session:
        sizes = [
            len(json.dumps(row.context)) + len(row.name)
            for row in session.execute(
                select(WorkflowCheckpoint.__table__).where(WorkflowCheckpoint.workflow_id == workflow_id)
            )
        ]
    assert max(sizes) <= min(sizes) + 4  # the name's digits, nothing else grows
    # Each still holds the outputs of its time, read from the step runs.
    assert [len(c.step_outputs) for c in checkpoints] == list(range(1, 61))


def test_a_checkpoint_step_reads_no_more_than_a_step_of_a_short_workflow(
    db: Database, noop_registry: ToolRegistry, one_claim: None
) -> None:
    """A step that takes a checkpoint goes through the locked path, not the hot path:
    its statements, and the bytes they read, must not grow with the workflow either.
    (The stored definition, which grows with the number of steps, was loaded and
    decoded again at every such step: 3.6 ms per step at 10 steps, 10 ms at 1,000.)"""
    read: Counter[str] = Counter()

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        read["statements"] += 1
        if sql.lstrip().upper().startswith("SELECT") and "workflows.definition" in sql:
            read["definition reads"] += 1

    totals = {}
    for length in (10, 40):
        workflow_id = start(db, [{**step, "create_checkpoint": True} for step in steps(length)])
        for engine in db.engines:
            event.listen(engine, "before_cursor_execute", statement)
        try:
            build_runner(db, registry=noop_registry, lease_seconds=30).run_until_idle(max_seconds=120)
        finally:
            for engine in db.engines:
                event.remove(engine, "before_cursor_execute", statement)
        assert ops.get_workflow(db, workflow_id).status == "completed"
        totals[length] = read.copy()
        read.clear()
    # The definition is read at most once, when the workflow is first claimed (on
    # PostgreSQL the claim's own statement returns it), however long the workflow is.
    assert totals[10]["definition reads"] == totals[40]["definition reads"] <= 1, totals
    # Every checkpoint step costs the same statements, at step 10 as at step 40.
    assert (totals[40]["statements"] - totals[10]["statements"]) % 30 == 0, totals
