"""Workflow page: timeline, events, state, pause/resume/cancel by role."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from core.engine import workflows as ops
from core.store.db import Database
from tests.integration.dashboard.conftest import (
    all_text,
    new_app,
    no_exception,
    open_page,
    pending_for,
    plotly_specs,
    sign_in,
)


def workflow_page(email: str, workflow_id: str) -> AppTest:
    at = sign_in(new_app(), email)
    open_page(at, "workflow", workflow=workflow_id)
    no_exception(at)
    return at


def deployment_id(db: Database) -> str:
    workflow_id = pending_for(db, "devops@example.com")[0].workflow_id
    assert workflow_id
    return workflow_id


def test_timeline_events_and_state(demo_db: Database) -> None:
    at = workflow_page("viewer@example.com", deployment_id(demo_db))
    assert [t.value for t in at.title] == ["Production deployment"]
    (spec,) = plotly_specs(at)
    bars = [trace for trace in spec["data"] if trace["type"] == "bar"]
    assert len(bars) == 1
    assert "base" in bars[0] and len(bars[0]["y"]) == 2  # checks done, approval waiting
    markers = [trace["name"] for trace in spec["data"] if trace["type"] == "scatter"]
    assert "approval requested" in markers
    events = at.dataframe(key="workflow.events").value
    assert "workflow.created" in set(events["event"])
    changes = events.loc[events["event"] == "workflow.status_changed", "change"]
    assert "status: pending → running" in set(changes)
    state = [j for j in at.json if '"current_step"' in str(j.value)]
    assert state, "the current state is shown as JSON"


def test_a_viewer_cannot_steer(demo_db: Database) -> None:
    at = workflow_page("viewer@example.com", deployment_id(demo_db))
    keys = {b.key for b in at.button}
    assert not keys & {"workflow.pause", "workflow.resume", "workflow.cancel", "checkpoints.rollback"}
    assert "Viewers cannot steer workflows." in all_text(at)


def test_pause_and_resume_but_only_an_admin_cancels(demo_db: Database) -> None:
    workflow_id = deployment_id(demo_db)
    at = workflow_page("devops@example.com", workflow_id)
    assert "workflow.cancel" not in {b.key for b in at.button}
    at.button(key="workflow.pause").click().run()
    no_exception(at)
    assert ops.get_workflow(demo_db, workflow_id).status == "paused"
    assert "Paused." in all_text(at)
    at.button(key="workflow.resume").click().run()
    assert ops.get_workflow(demo_db, workflow_id).status == "waiting_approval"
    events = ops.events_of(demo_db, workflow_id)
    assert [e.actor for e in events if e.event_type == "workflow.status_changed"][-2:] == [
        "devops@example.com",
        "devops@example.com",
    ]

    admin = workflow_page("admin@example.com", workflow_id)
    admin.button(key="workflow.cancel").click().run()
    no_exception(admin)
    assert ops.get_workflow(demo_db, workflow_id).status == "cancelled"
    assert "workflow.pause" not in {b.key for b in admin.button}


def test_unknown_workflow_and_picking_a_recent_one(demo_db: Database) -> None:
    at = workflow_page("viewer@example.com", "nope")
    assert [e.value for e in at.error] == ["No workflow has the id 'nope'."]
    quoting = workflow_page("viewer@example.com", "nope'\"<x>")
    # Quoted as typed: no Python repr escapes (the page's Markdown escapes undone).
    shown = [re.sub(r"\\(.)", r"\1", str(e.value)) for e in quoting.error]
    assert shown == ["No workflow has the id 'nope'\"<x>'."]
    open_page(at, "workflow")
    workflow_id = deployment_id(demo_db)
    at.selectbox(key="workflow.pick").set_value(workflow_id).run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Production deployment"]


def test_the_timeline_marks_each_vote_with_its_channel_and_each_checkpoint(demo_db: Database) -> None:
    from core.approvals.engine import ApprovalEngine

    request = pending_for(demo_db, "devops@example.com")[0]
    ApprovalEngine(demo_db).respond_to_approval(
        request.id, "devops@example.com", "reject", comment="not today", channel="slack"
    )
    assert request.workflow_id
    at = workflow_page("viewer@example.com", request.workflow_id)
    (spec,) = plotly_specs(at)
    markers = {trace["name"]: trace for trace in spec["data"] if trace["type"] == "scatter"}
    assert {"vote", "checkpoint", "approval decided"} <= set(markers)
    (vote,) = markers["vote"]["customdata"]
    assert vote[0] == "devops@example.com"
    assert vote[1] == "reject via slack: not today"
    checkpoints = [detail for _, detail in markers["checkpoint"]["customdata"]]
    assert checkpoints and all(detail.startswith("checkpoint ") for detail in checkpoints)
