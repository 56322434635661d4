"""Checkpoints: list, diff against now, and Rollback through a confirmation dialog (admins)."""

from __future__ import annotations

from datetime import timedelta

from streamlit.testing.v1 import AppTest

from components.text import md
from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.store.db import Database
from core.store.tables import Workflow, utcnow
from tests.integration.dashboard.conftest import (
    all_text,
    new_app,
    no_exception,
    open_page,
    pending_for,
    run_runner,
    sign_in,
    table_with,
)

CHECKPOINT = "before:deployment_approval"


def completed_deployment(db: Database) -> str:
    """The demo deployment, approved and run to the end (deploy done, compensable)."""
    approval = pending_for(db, "devops@example.com")[0]
    ApprovalEngine(db).respond_to_approval(
        approval.id, "devops@example.com", "approve", data={"change_ticket": "CHG-7", "window": "now"}
    )
    run_runner(db)
    workflow_id = approval.workflow_id or ""
    assert ops.get_workflow(db, workflow_id).status == "completed"
    return workflow_id


def checkpoints_of(email: str, workflow_id: str) -> AppTest:
    at = sign_in(new_app(), email)
    open_page(at, "workflow", workflow=workflow_id)
    no_exception(at)
    return at


def test_list_and_diff_against_now(demo_db: Database) -> None:
    workflow_id = completed_deployment(demo_db)
    at = checkpoints_of("viewer@example.com", workflow_id)
    table = table_with(at, "name", "who", "state")
    assert CHECKPOINT in set(table["name"])
    assert set(table["state"]) == {"active"}
    picker = at.selectbox(key="checkpoints.pick")
    # Each choice says when it was taken, and in which time zone (the dashboard's times are UTC).
    assert picker.options and all(option.endswith(" UTC)") for option in picker.options), picker.options
    picker.set_value(CHECKPOINT).run()
    diff = table_with(at, "path", "checkpoint", "now")
    assert "current_step" in set(diff["path"])
    assert any(path.startswith("step_outputs.deploy") for path in diff["path"])
    assert "Only admins can roll back." in all_text(at)
    assert "checkpoints.rollback" not in {b.key for b in at.button}


def test_an_admin_rolls_back_through_the_dialog(demo_db: Database) -> None:
    workflow_id = completed_deployment(demo_db)
    at = checkpoints_of("admin@example.com", workflow_id)
    at.selectbox(key="checkpoints.pick").set_value(CHECKPOINT).run()
    assert at.button(key="checkpoints.rollback").proto.type == "primary"  # the diff is not empty
    at.button(key="checkpoints.rollback").click().run()
    no_exception(at)
    assert at.button(key="rollback.submit").label == "Confirm rollback"
    # Before confirming: the compensations that will run, and the requests to cancel.
    plan = table_with(at, "step", "compensation")
    assert list(plan["step"]) == ["smoke_tests", "deploy", "deployment_approval"]
    assert list(plan["compensation"]) == ["(nothing to undo)", "rollback_release", "(nothing to undo)"]
    assert "**Requests that will be cancelled:** none" in all_text(at)

    at.button(key="rollback.submit").click().run()  # no reason, not confirmed
    assert "Give a reason for the rollback." in [e.value for e in at.error]
    assert ops.get_workflow(demo_db, workflow_id).status == "completed"

    at.text_input(key="rollback.reason").input("Bad release")
    at.button(key="rollback.submit").click().run()
    assert "Tick the confirmation to roll back." in [e.value for e in at.error]
    assert ops.get_workflow(demo_db, workflow_id).status == "completed"

    at.checkbox(key="rollback.confirm").check()
    at.button(key="rollback.submit").click().run()
    no_exception(at)
    workflow = ops.get_workflow(demo_db, workflow_id)
    assert workflow.status == "paused"
    assert "deploy" not in workflow.step_outputs
    # The checkpoint's name is text (its Markdown escaped) inside our own bold.
    assert "Rolled back to **before:deployment\\_approval**" in all_text(at)
    compensations = table_with(at, "step", "tool", "result")
    assert list(compensations["step"]) == ["smoke_tests", "deploy", "deployment_approval"]
    assert list(compensations["tool"]) == ["(nothing to undo)", "rollback_release", "(nothing to undo)"]
    assert "rollback.submit" not in {b.key for b in at.button}  # the dialog closed
    rolled = [e for e in ops.events_of(demo_db, workflow_id) if e.event_type == "workflow.rolled_back"]
    assert [(e.actor, e.data["reason"]) for e in rolled] == [("admin@example.com", "Bad release")]


def test_rollback_cancels_open_approvals_and_says_so(demo_db: Database) -> None:
    approval = pending_for(demo_db, "devops@example.com")[0]
    at = checkpoints_of("admin@example.com", approval.workflow_id or "")
    at.selectbox(key="checkpoints.pick").set_value("after:pre_deployment_checks").run()
    at.button(key="checkpoints.rollback").click().run()
    assert "**Requests that will be cancelled:** Production deploy approval" in all_text(at)
    at.text_input(key="rollback.reason").input("Re-run the checks")
    at.checkbox(key="rollback.confirm").check()
    at.button(key="rollback.submit").click().run()
    no_exception(at)
    assert f"**Cancelled approvals:** {approval.id}" in all_text(at)
    assert ApprovalEngine(demo_db).get(approval.id).status == "cancelled"


def test_a_busy_workflow_is_refused_with_core_s_message(demo_db: Database) -> None:
    workflow_id = completed_deployment(demo_db)
    at = checkpoints_of("admin@example.com", workflow_id)
    with demo_db.session() as session:  # a runner holds it right now, mid-step
        workflow = session.get(Workflow, workflow_id)
        assert workflow is not None
        workflow.status = "running"
        workflow.lease_owner = "another-runner"
        workflow.lease_expires_at = utcnow() + timedelta(minutes=5)
    at.selectbox(key="checkpoints.pick").set_value(CHECKPOINT).run()
    at.button(key="checkpoints.rollback").click().run()
    at.text_input(key="rollback.reason").input("Bad release")
    at.checkbox(key="rollback.confirm").check()
    at.button(key="rollback.submit").click().run()
    no_exception(at)
    # A conflict with the workflow's state (core.base.errors.Conflict) is shown as a warning.
    assert "A runner is executing a step of this workflow right now; try again in a moment." in [
        e.value for e in at.warning
    ]
    assert ops.get_workflow(demo_db, workflow_id).status == "running"


def test_rollback_is_not_primary_when_nothing_differs(demo_db: Database) -> None:
    approval = pending_for(demo_db, "devops@example.com")[0]
    at = checkpoints_of("admin@example.com", approval.workflow_id or "")
    at.selectbox(key="checkpoints.pick").set_value(CHECKPOINT).run()
    assert "No differences." in [c.value for c in at.caption]
    assert at.button(key="checkpoints.rollback").proto.type == "secondary"


def test_the_workflow_page_says_what_it_waits_for_and_how_it_ended(demo_db: Database) -> None:
    approval = pending_for(demo_db, "devops@example.com")[0]
    at = checkpoints_of("viewer@example.com", approval.workflow_id or "")
    text = all_text(at)
    assert f"Waits for **{md('devops@example.com')}** to answer **Production deploy approval**" in text
    [link] = [x for x in at.get("page_link") if x.proto.label == "Open the request"]
    assert approval.id in link.proto.query_string
    workflow_id = completed_deployment(demo_db)
    done = all_text(checkpoints_of("viewer@example.com", workflow_id))
    assert "finished: all 4 steps done" in done
    assert "(end)" not in done and "Waits for" not in done
