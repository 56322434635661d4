"""The start and finish paths (core.engine.start_path, core.engine.finish_path) on SQLite
and PostgreSQL: a claimed plain step starts, and a plain last step ends its workflow,
in Core statements, writing what the general path writes, and nothing when the
workflow changed under the step."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.channels.registry import store_channel_settings
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.records.trail_verify import require_intact, verify
from core.store.db import Database
from core.store.tables import Notification
from tests.helpers.engine import Calls, accounts, events, run, start, status, step_runs, tool

OPS = "ops@example.com"
HOOK = "http://127.0.0.1:9/hooks/countersign"  # queued only: nothing is delivered here


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    accounts(db, "admin", OPS)


def finished_hooks(db: Database, workflow_id: str) -> list[Notification]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Notification).where(
                    Notification.workflow_id == workflow_id, Notification.channel == "webhook"
                )
            )
        )


def test_a_plain_workflow_starts_and_finishes_as_the_general_path_records_it(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    store_channel_settings(db, "webhook", enabled=True, settings={"urls": [HOOK]}, actor=OPS)
    fast = start(db, [tool("a"), tool("b")])
    # A checkpoint after the last step sends its end down the general path.
    general = start(db, [tool("a"), {**tool("b"), "create_checkpoint": True}])
    run(db, registry)
    for workflow_id in (fast, general):
        workflow = ops.get_workflow(db, workflow_id)
        assert (workflow.status, workflow.current_step, workflow.current_step_run_id) == (
            "completed",
            2,
            None,
        )
        assert workflow.finished_at is not None and workflow.runnable_at is None
        assert (workflow.lease_owner, workflow.lease_expires_at) == (None, None)
        runs = step_runs(db, workflow_id)
        assert [(r.step_name, r.status, r.attempt) for r in runs] == [
            ("a", "completed", 1),
            ("b", "completed", 1),
        ]
        assert [r.idempotency_key for r in runs] == [f"{workflow_id}/{r.id}" for r in runs]
        assert runs[1].output == {"done": "b", "value": None, "key": runs[1].idempotency_key}
        started = events(db, workflow_id, "step.started")
        assert [(e.step_name, e.data) for e in started] == [
            (
                r.step_name,
                {
                    "step_run_id": r.id,
                    "index": i,
                    "type": "tool",
                    "idempotency_key": r.idempotency_key,
                    "attempt": 1,
                },
            )
            for i, r in enumerate(runs)
        ]
        assert [e.before for e in started] == [None, None]
        completed = events(db, workflow_id, "step.completed")
        assert completed[-1].before == {"current_step": 1, "step_outputs": {}}
        assert completed[-1].after["current_step"] == 2
        assert completed[-1].data == {"step_run_id": runs[1].id, "attempt": 1}
        finished = events(db, workflow_id, "workflow.status_changed")[-1]
        assert (finished.before, finished.after, finished.data) == (
            {"status": "running"},
            {"status": "completed"},
            {},
        )
        require_intact(verify(db, OPS, workflow_id))
    # The workflow.finished webhook is queued the same way by both paths.
    hooks = {workflow_id: finished_hooks(db, workflow_id) for workflow_id in (fast, general)}
    for workflow_id, rows in hooks.items():
        [row] = rows
        assert (row.kind, row.channel, row.recipient, row.status, row.attempts) == (
            "webhook.workflow.finished",
            "webhook",
            HOOK,
            "pending",
            0,
        )
        body = row.payload["event"]
        assert body["type"] == "workflow.finished"
        assert body["data"]["workflow_id"] == workflow_id and body["data"]["status"] == "completed"
    shapes = [
        {k: v for k, v in rows[0].payload["event"]["data"].items() if k != "workflow_id"}
        | {"keys": sorted(rows[0].payload["event"])}
        for rows in hooks.values()
    ]
    assert shapes[0] == shapes[1]
    assert [c["label"] for c in calls.of("do")] == ["a", "b", "a", "b"]


def test_no_webhook_is_queued_when_the_channel_is_switched_off(db: Database, registry: ToolRegistry) -> None:
    store_channel_settings(db, "webhook", enabled=False, settings={"urls": [HOOK]}, actor=OPS)
    workflow_id = start(db, [tool("a")])
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert finished_hooks(db, workflow_id) == []


OTHER_HOOK = "http://127.0.0.1:9/hooks/other"


@pytest.mark.parametrize(
    ("at_start", "during_the_last_step", "recipients"),
    [
        (None, {"enabled": True, "settings": {"urls": [HOOK]}}, [HOOK]),  # a row appears
        (
            {"enabled": True, "settings": {"urls": [HOOK]}},
            {"enabled": False, "settings": {"urls": [HOOK]}},
            [],
        ),
        (
            {"enabled": False, "settings": {"urls": [HOOK]}},
            {"enabled": True, "settings": {"urls": [HOOK]}},
            [HOOK],
        ),
        (
            {"enabled": True, "settings": {"urls": [HOOK]}},
            {"enabled": True, "settings": {"urls": [OTHER_HOOK]}},
            [OTHER_HOOK],
        ),
    ],
    ids=["configured", "switched-off", "switched-on", "url-changed"],
)
def test_the_finish_queues_the_webhooks_stored_when_it_commits_not_those_read_at_the_start(
    db: Database,
    registry: ToolRegistry,
    at_start: dict[str, Any] | None,
    during_the_last_step: dict[str, Any],
    recipients: list[str],
) -> None:
    """The runner reads the webhook settings with a workflow's start and finishes without
    reading them again (PostgreSQL: core.engine.finish_path.WebhookRow); settings changed
    in between are the ones the workflow.finished rows go to, on both backends."""
    if at_start is not None:
        store_channel_settings(db, "webhook", **at_start, actor=OPS)

    @registry.register("reconfigures")
    def reconfigures() -> dict[str, Any]:
        store_channel_settings(db, "webhook", **during_the_last_step, actor=OPS)
        return {}

    workflow_id = start(db, [tool("a"), {"name": "last", "type": "tool", "tool": "reconfigures"}])
    # A second workflow after it, in the same runner: it finishes with the new settings too.
    after = start(db, [tool("b")])
    run(db, registry)
    for finished in (workflow_id, after):
        assert status(db, finished) == "completed"
        assert [row.recipient for row in finished_hooks(db, finished)] == recipients
        changes = events(db, finished, "workflow.status_changed")
        assert [e.after for e in changes].count({"status": "completed"}) == 1
        require_intact(verify(db, OPS, finished))
    assert [r.status for r in step_runs(db, workflow_id)] == ["completed", "completed"]


def test_a_pause_during_the_last_step_keeps_its_outcome_and_does_not_finish(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    @registry.register("pauses")
    def pauses(idempotency_key: str) -> dict[str, Any]:
        calls.add("pauses", key=idempotency_key)
        ops.pause_workflow(db, workflow_id, OPS, "hold on")
        return {"paused": True}

    workflow_id = start(db, [tool("a"), {"name": "last", "type": "tool", "tool": "pauses"}])
    run(db, registry)
    # The finish path wrote nothing (the workflow was no longer running); the general
    # path kept the outcome, as after any step, and the workflow stays paused.
    assert status(db, workflow_id) == "paused"
    assert [(r.step_name, r.status) for r in step_runs(db, workflow_id)] == [
        ("a", "completed"),
        ("last", "completed"),
    ]
    assert [e.after for e in events(db, workflow_id, "workflow.status_changed")][-1] == {"status": "paused"}
    ops.resume_workflow(db, workflow_id, OPS)
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert len(calls.of("pauses")) == 1  # never run again
    require_intact(verify(db, OPS, workflow_id))


def test_a_cancel_during_the_only_step_ends_it_cancelled(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    @registry.register("cancels")
    def cancels(idempotency_key: str) -> dict[str, Any]:
        calls.add("cancels", key=idempotency_key)
        ops.cancel_workflow(db, workflow_id, OPS, "stop")
        return {"late": True}

    workflow_id = start(db, [{"name": "only", "type": "tool", "tool": "cancels"}])
    run(db, registry)
    assert status(db, workflow_id) == "cancelled"
    assert [e.after["status"] for e in events(db, workflow_id, "workflow.status_changed")][-1] == "cancelled"
    assert "completed" not in [e.after["status"] for e in events(db, workflow_id, "workflow.status_changed")]
    require_intact(verify(db, OPS, workflow_id))


# -- the unlocked start (PostgreSQL: core.engine.start_path.read_for_start, start_unread) --


def _meanwhile(monkeypatch: pytest.MonkeyPatch, act: Any) -> list[str]:
    """Run ``act(workflow_id)`` once, after the start's unlocked read (the claim's, or its
    own) and before its write; the ids it ran for."""
    from core.engine import start_path

    write, acted = start_path.start_unread, []

    def act_then_write(conn: Any, runner_id: str, seen: Any, **kwargs: Any) -> Any:
        if not acted:
            acted.append(seen.workflow_id)
            act(seen.workflow_id)
        return write(conn, runner_id, seen, **kwargs)

    monkeypatch.setattr(start_path, "start_unread", act_then_write)
    return acted


def test_a_trail_entry_appended_after_the_unlocked_read_is_read_before_the_start_is_written(
    db: Database, registry: ToolRegistry, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head the start sealed after is stale: its statement writes nothing, and the
    start is sealed after the new entry once read again (the chain stays intact, the
    database refused nothing, nothing runs twice)."""
    if not db.is_postgres:
        pytest.skip("SQLite starts under its write lock only")
    from core.store.events import add_event

    def note(workflow_id: str) -> None:
        with db.session() as session:
            add_event(session, "workflow.note", OPS, workflow_id=workflow_id, data={"note": "meanwhile"})

    acted = _meanwhile(monkeypatch, note)
    workflow_id = start(db, [tool("a"), tool("b")])
    run(db, registry)
    assert acted == [workflow_id]
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["a", "b"]
    assert [e.step_name for e in events(db, workflow_id, "step.started")] == ["a", "b"]
    assert len(events(db, workflow_id, "workflow.note")) == 1
    assert events(db, workflow_id, "engine.error") == []  # not refused by the database either
    assert [(r.step_name, r.attempt) for r in step_runs(db, workflow_id)] == [("a", 1), ("b", 1)]
    require_intact(verify(db, OPS, workflow_id))


def test_a_row_changed_after_the_unlocked_read_is_read_again_before_its_step_acts(
    db: Database, registry: ToolRegistry, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row changed between the read and the start, with no trail entry (its context,
    by a bare UPDATE): the start writes nothing (the row is no longer the version read)
    and the step's template reads the new value."""
    if not db.is_postgres:
        pytest.skip("SQLite starts under its write lock only")
    from sqlalchemy import update

    from core.store.tables import Workflow

    def merge(workflow_id: str) -> None:
        with db.session() as session:
            session.execute(
                update(Workflow).where(Workflow.id == workflow_id).values(context={"region": "eu-west"})
            )

    acted = _meanwhile(monkeypatch, merge)
    workflow_id = start(
        db,
        [{"name": "a", "type": "tool", "tool": "do", "args": {"label": "a", "value": "${context.region}"}}],
        input_data={"region": "us-east"},
    )
    run(db, registry)
    assert acted == [workflow_id]
    assert status(db, workflow_id) == "completed"
    assert [(c["label"], c["value"]) for c in calls.of("do")] == [("a", "eu-west")]
    assert len(step_runs(db, workflow_id)) == 1
    require_intact(verify(db, OPS, workflow_id))
