"""Crash recovery, DBOS style: leave a workflow as a dead runner would have left it
(a step run ``running``, the lease lapsed) and let a new runner finish it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from core.engine import workflows as ops
from core.engine.runner import claim_next_workflow
from core.engine.tools import ToolRegistry
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import Workflow, utcnow
from tests.helpers.engine import Calls, event_types, events, run, start, status, step_runs


class ProcessDied(BaseException):
    """Stands in for the process dying mid-step: nothing in the engine catches it."""


@pytest.fixture
def dies_once(registry: ToolRegistry, calls: Calls) -> None:
    state = {"died": False}

    @registry.register("fragile")
    def fragile(label: str, idempotency_key: str) -> dict[str, Any]:
        calls.add("fragile", label=label, key=idempotency_key)
        if not state["died"]:
            state["died"] = True
            raise ProcessDied(label)
        return {"ok": label}


def set_lease(db: Database, workflow_id: str, owner: str, expires_in: float) -> None:
    with db.session() as session:
        session.execute(
            update(Workflow)
            .where(Workflow.id == workflow_id)
            .values(lease_owner=owner, lease_expires_at=utcnow() + timedelta(seconds=expires_in))
        )


def test_interrupted_step_runs_again_with_the_same_key(
    db: Database, registry: ToolRegistry, calls: Calls, dies_once: None
) -> None:
    workflow_id = start(
        db,
        [
            {"name": "a", "type": "tool", "tool": "do", "args": {"label": "a"}},
            {"name": "b", "type": "tool", "tool": "fragile", "args": {"label": "b"}},
            {"name": "c", "type": "tool", "tool": "do", "args": {"label": "c"}},
        ],
    )
    with pytest.raises(ProcessDied):
        build_runner(db, registry=registry, runner_id="doomed").run_until_idle(max_seconds=30)
    # As the dead process left it: step b recorded as running, a lease nobody renews.
    [run_a, run_b] = step_runs(db, workflow_id)
    assert (run_a.status, run_b.status) == ("completed", "running")
    workflow = ops.get_workflow(db, workflow_id)
    assert (workflow.status, workflow.current_step_run_id) == ("running", run_b.id)
    set_lease(db, workflow_id, "doomed", expires_in=30)

    # While the lease holds, nobody else may take the workflow.
    assert claim_next_workflow(db, "rescuer", 10) is None
    set_lease(db, workflow_id, "doomed", expires_in=-1)  # the lease lapses

    build_runner(db, registry=registry, runner_id="rescuer", lease_seconds=10).run_until_idle(max_seconds=30)
    assert status(db, workflow_id) == "completed"
    attempts = calls.of("fragile")
    assert len(attempts) == 2 and attempts[0]["key"] == attempts[1]["key"] == run_b.idempotency_key
    assert [c["label"] for c in calls.of("do")] == ["a", "c"]  # no completed step ran twice
    [resumed] = events(db, workflow_id, "step.resumed")
    assert (resumed.actor, resumed.step_name) == ("rescuer", "b")
    assert resumed.data["idempotency_key"] == run_b.idempotency_key
    assert [r.status for r in step_runs(db, workflow_id)] == ["completed", "completed", "completed"]
    assert event_types(db, workflow_id).count("step.completed") == 3


def test_a_runner_that_lost_its_lease_drops_its_outcome(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    stolen = {"done": False}

    @registry.register("stall")
    def stall(idempotency_key: str) -> dict[str, Any]:
        calls.add("stall", key=idempotency_key)
        if not stolen["done"]:
            # While this runner stalls, its lease lapses and another runner claims it.
            stolen["done"] = True
            set_lease(db, workflow_id, "thief", expires_in=-1)
        return {"ok": True}

    workflow_id = start(
        db,
        [
            {"name": "s", "type": "tool", "tool": "stall"},
            {"name": "t", "type": "tool", "tool": "do", "args": {"label": "t"}},
        ],
    )
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    keys = [c["key"] for c in calls.of("stall")]
    assert len(keys) == 2 and keys[0] == keys[1]
    # The outcome of the run that lost its lease was not written: s completed once.
    assert [e.step_name for e in events(db, workflow_id, "step.completed")] == ["s", "t"]
    assert len(step_runs(db, workflow_id)) == 2
