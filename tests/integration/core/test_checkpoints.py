"""Checkpoints and saga rollback on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.base.errors import (
    CheckpointNotFound,
    CompensationFailed,
    InvalidTransition,
    ReservedCheckpointName,
    WorkflowBusy,
)
from core.engine import workflows as ops
from core.engine.checkpoints import rollback, take_checkpoint
from core.engine.tools import ToolRegistry
from core.orchestrator import SmolAgentOrchestrator, StateManager
from core.store.db import Database
from core.store.tables import Workflow, utcnow
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
)

ACTOR = "ops@example.com"


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """Who acts in these tests has an account (core.identity): checkpoints and rollbacks are an admin's."""
    accounts(db, "admin", ACTOR, "eve@example.com")


def saga(db: Database, registry: ToolRegistry) -> str:
    """a, b, c (each compensated by ``undo``; after:a checkpointed), then a gate, then d."""
    workflow_id = start(
        db,
        [
            tool("a", compensate="undo", create_checkpoint=True),
            tool("b", compensate="undo"),
            tool("c", compensate={"tool": "undo", "args": {}}),
            approval("gate"),
            tool("d"),
        ],
        input_data={"order": "A-1"},
    )
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    return workflow_id


def checkpoint_names(db: Database, workflow_id: str) -> list[tuple[str, bool]]:
    return [(c.name, c.superseded_by_event_id is not None) for c in ops.checkpoints_of(db, workflow_id)]


def test_checkpoints_before_approvals_after_steps_and_checkpoint_steps(
    db: Database, registry: ToolRegistry
) -> None:
    workflow_id = start(
        db,
        [
            tool("a", create_checkpoint=True),
            {"name": "mark", "type": "checkpoint", "description": "halfway"},
            approval("first"),
            {
                **tool("b"),
                "requires_approval": True,
                "approval_config": {"requested_from": "boss@example.com"},
            },
        ],
    )
    run(db, registry)
    ApprovalEngine(db).respond_to_approval(
        open_approval_of(db, workflow_id).id, "boss@example.com", "approve"
    )
    run(db, registry)
    ApprovalEngine(db).respond_to_approval(
        open_approval_of(db, workflow_id).id, "boss@example.com", "approve"
    )
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    checkpoints = ops.checkpoints_of(db, workflow_id)
    assert [(c.name, c.step_index) for c in checkpoints] == [
        ("after:a", 1),
        ("mark", 2),
        ("before:first", 2),
        ("before:b", 3),
    ]
    assert checkpoints[1].description == "halfway"
    # Each holds the outputs as they were when it was taken.
    assert [sorted(c.step_outputs) for c in checkpoints] == [
        ["a"],
        ["a", "mark"],
        ["a", "mark"],
        ["a", "first", "mark"],
    ]


def test_on_demand_checkpoint_through_the_facades(db: Database, registry: ToolRegistry) -> None:
    orchestrator = SmolAgentOrchestrator(db, registry=registry, actor=ACTOR)
    workflow = orchestrator.create_workflow(
        "manual", workflow_definition={"steps": [tool("a")]}, input_data={"k": 1}
    )
    checkpoint = orchestrator.create_checkpoint("by hand", description="before anything")
    assert (checkpoint.name, checkpoint.step_index, checkpoint.context) == ("by hand", 0, {"k": 1})
    StateManager(db, registry).create_checkpoint(workflow.id, "second", actor="eve@example.com")
    assert [c.created_by for c in ops.checkpoints_of(db, workflow.id)] == [ACTOR, "eve@example.com"]
    assert events(db, workflow.id, "checkpoint.created")[1].actor == "eve@example.com"


def test_rollback_to_a_named_checkpoint(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = saga(db, registry)
    request = open_approval_of(db, workflow_id)
    StateManager(db).update_workflow_state(workflow_id, {"note": "added later"})
    do_keys = {c["label"]: c["key"] for c in calls.of("do")}
    runs_before = step_runs(db, workflow_id)

    result = rollback(db, registry, workflow_id, checkpoint_name="after:a", reason="wrong order", actor=ACTOR)

    assert result.checkpoint == "after:a"
    assert result.cancelled_approvals == [request.id]
    assert ApprovalEngine(db).get(request.id).status == "cancelled"
    # Saga: compensations newest first, each with the step's output and a stable key.
    undo = calls.of("undo")
    assert [u["label"] for u in undo] == ["c", "b"]
    run_ids = {r.step_name: r.id for r in runs_before}
    assert [u["key"] for u in undo] == [
        f"{workflow_id}/compensate/{run_ids['c']}",
        f"{workflow_id}/compensate/{run_ids['b']}",
    ]
    assert [(c["step"], c["tool"]) for c in result.compensations] == [("c", "undo"), ("b", "undo")]
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "paused"
    assert workflow.current_step == 1 and workflow.current_step_run_id is None
    assert set(workflow.step_outputs) == {"a"}
    assert workflow.context == {"order": "A-1"}  # the later note is gone
    assert {r.step_name: r.status for r in step_runs(db, workflow_id)} == {
        "a": "completed",
        "b": "compensated",
        "c": "compensated",
        "gate": "rolled_back",
    }
    assert checkpoint_names(db, workflow_id) == [("after:a", False), ("before:gate", True)]
    [rolled] = events(db, workflow_id, "workflow.rolled_back")
    assert rolled.actor == ACTOR and rolled.data["reason"] == "wrong order"
    assert rolled.before is not None and "gate" not in rolled.before["step_outputs"]
    assert set(rolled.before["step_outputs"]) == {"a", "b", "c"}
    assert rolled.after is not None and rolled.after["current_step"] == 1
    # History stays visible: nothing that happened is erased.
    kinds = event_types(db, workflow_id)
    assert kinds.count("step.completed") == 3 and kinds.count("step.compensated") == 2
    assert "approval.cancelled" in kinds and "rollback.started" in kinds

    # Resumed, it runs b and c again as new executions with new keys.
    ops.resume_workflow(db, workflow_id, ACTOR)
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    again = calls.of("do")[3:]
    assert [c["label"] for c in again] == ["b", "c"]
    assert {c["key"] for c in again}.isdisjoint(do_keys.values())


def test_rollback_to_the_latest_checkpoint(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = saga(db, registry)
    request = open_approval_of(db, workflow_id)
    result = rollback(db, registry, workflow_id, checkpoint_name=None, reason="ask again", actor=ACTOR)
    assert result.checkpoint == "before:gate"
    assert result.cancelled_approvals == [request.id]
    assert result.compensations == [] and calls.of("undo") == []
    workflow = ops.get_workflow(db, workflow_id)
    assert (workflow.status, workflow.current_step) == ("paused", 3)
    assert set(workflow.step_outputs) == {"a", "b", "c"}
    ops.resume_workflow(db, workflow_id, ACTOR)
    run(db, registry)
    fresh = open_approval_of(db, workflow_id)
    assert fresh.id != request.id
    ApprovalEngine(db).respond_to_approval(fresh.id, "boss@example.com", "approve")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["a", "b", "c", "d"]


def test_rollback_of_a_completed_workflow_via_the_orchestrator(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    orchestrator = SmolAgentOrchestrator(db, registry=registry, actor=ACTOR)
    orchestrator.create_workflow(
        "done",
        workflow_definition={
            "steps": [tool("a", create_checkpoint=True), tool("b", compensate="undo"), tool("c")]
        },
    )
    report = orchestrator.execute_workflow()
    assert report["status"] == "completed"
    assert report["progress"] == {"completed": 3, "total": 3}
    result = orchestrator.rollback_workflow("after:a", reason="undo b")
    assert [c["step"] for c in result.compensations] == ["c", "b"]
    assert [u["label"] for u in calls.of("undo")] == ["b"]
    after = orchestrator.get_workflow_status()
    assert (after["status"], after["current_step"]) == ("paused", "b")
    assert [c["superseded"] for c in after["checkpoints"]] == [False]


def test_a_failed_compensation_resumes_without_compensating_twice(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    failures = {"b": 1}

    @registry.register("flaky_undo")
    def flaky_undo(output: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        label = output["done"]
        calls.add("flaky_undo", label=label, key=idempotency_key)
        if failures.get(label, 0) > 0:
            failures[label] -= 1
            raise RuntimeError(f"payment provider down while undoing {label}")
        return {"undone": label}

    workflow_id = start(
        db,
        [
            tool("a", create_checkpoint=True),
            tool("b", compensate="flaky_undo"),
            tool("c", compensate="flaky_undo"),
            tool("d", compensate="flaky_undo"),
        ],
    )
    run(db, registry)
    with pytest.raises(CompensationFailed, match="Compensating step 'b' with tool 'flaky_undo'"):
        rollback(db, registry, workflow_id, checkpoint_name="after:a", reason="r1", actor=ACTOR)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "paused"
    assert set(workflow.step_outputs) == {"a", "b", "c", "d"}  # not restored yet
    assert {r.step_name: r.status for r in step_runs(db, workflow_id)} == {
        "a": "completed",
        "b": "completed",
        "c": "compensated",
        "d": "compensated",
    }
    assert "rollback.failed" in event_types(db, workflow_id)
    assert events(db, workflow_id, "workflow.rolled_back") == []

    result = rollback(db, registry, workflow_id, checkpoint_name="after:a", reason="r2", actor=ACTOR)
    assert [c["step"] for c in result.compensations] == ["b"]
    attempts = calls.of("flaky_undo")
    assert [a["label"] for a in attempts] == ["d", "c", "b", "b"]
    assert attempts[2]["key"] == attempts[3]["key"]  # the retried compensation keeps its key
    workflow = ops.get_workflow(db, workflow_id)
    assert (workflow.status, set(workflow.step_outputs)) == ("paused", {"a"})


def test_rollback_refusals(db: Database, registry: ToolRegistry) -> None:
    workflow_id = saga(db, registry)
    with pytest.raises(CheckpointNotFound, match="no checkpoint named 'nope'"):
        rollback(db, registry, workflow_id, checkpoint_name="nope", reason="x", actor=ACTOR)
    bare = start(db, [tool("only")])
    with pytest.raises(CheckpointNotFound, match="no checkpoint to roll back to"):
        rollback(db, registry, bare, checkpoint_name=None, reason="x", actor=ACTOR)
    ops.cancel_workflow(db, workflow_id, ACTOR)
    with pytest.raises(InvalidTransition, match="cancelled workflow cannot be rolled back"):
        rollback(db, registry, workflow_id, checkpoint_name=None, reason="x", actor=ACTOR)
    assert events(db, workflow_id, "rollback.started") == []


def test_rollback_waits_for_a_runner_mid_step(db: Database, registry: ToolRegistry) -> None:
    workflow_id = start(db, [tool("a")])
    ops.create_checkpoint(db, workflow_id, "start", ACTOR)
    with db.session() as session:
        row = session.get_one(Workflow, workflow_id)
        row.lease_owner, row.lease_expires_at = "other-runner", utcnow() + timedelta(minutes=1)
    with pytest.raises(WorkflowBusy):
        rollback(db, registry, workflow_id, checkpoint_name="start", reason="x", actor=ACTOR)
    assert status(db, workflow_id) == "running"
    # Paused while its step still runs (a pause lets the step finish): still busy, or the
    # step's effect would land after the rollback and never be compensated.
    ops.pause_workflow(db, workflow_id, ACTOR)
    with pytest.raises(WorkflowBusy):
        rollback(db, registry, workflow_id, checkpoint_name="start", reason="x", actor=ACTOR)
    assert events(db, workflow_id, "rollback.started") == []
    with db.session() as session:  # the runner finished and let go
        row = session.get_one(Workflow, workflow_id)
        row.lease_owner, row.lease_expires_at = None, None
    assert (
        rollback(db, registry, workflow_id, checkpoint_name="start", reason="x", actor=ACTOR).checkpoint
        == "start"
    )


@pytest.mark.parametrize("name", ["after:a", "before:gate", "after:", "before:anything"])
def test_a_person_cannot_take_a_checkpoint_under_the_engines_names(
    db: Database, registry: ToolRegistry, name: str
) -> None:
    workflow_id = saga(db, registry)
    before = checkpoint_names(db, workflow_id)
    with pytest.raises(ReservedCheckpointName, match="is reserved"):
        ops.create_checkpoint(db, workflow_id, name, ACTOR)
    with pytest.raises(ReservedCheckpointName):
        StateManager(db, registry).create_checkpoint(workflow_id, name, actor=ACTOR)
    assert checkpoint_names(db, workflow_id) == before


@pytest.mark.parametrize("made_by", ["agent:summarise", ACTOR])
def test_rollback_by_name_takes_the_engines_checkpoint_over_a_later_one_of_that_name(
    db: Database, registry: ToolRegistry, calls: Calls, made_by: str
) -> None:
    """A checkpoint an agent or a person took as ``after:a`` before such names were refused
    (old data) does not shadow the engine's own: the rollback compensates b and c."""
    workflow_id = saga(db, registry)
    with db.session() as session:  # as the old code let an agent's create_checkpoint do
        workflow = session.get_one(Workflow, workflow_id)
        shadow = take_checkpoint(session, workflow, "after:a", made_by, step_name="summarise")
        shadow_id = shadow.id
    automatic = next(
        c for c in ops.checkpoints_of(db, workflow_id) if c.name == "after:a" and c.id != shadow_id
    )

    result = rollback(db, registry, workflow_id, checkpoint_name="after:a", reason="undo", actor=ACTOR)

    assert result.checkpoint_id == automatic.id
    assert [c["label"] for c in calls.of("undo")] == ["c", "b"]
