"""Workflow page: step events show what they changed, outputs read from their step runs."""

from __future__ import annotations

from core.engine import workflows as ops
from core.store.db import Database
from tests.integration.dashboard.conftest import new_app, no_exception, open_page, pending_for, sign_in


def test_step_events_show_their_outputs_not_references(demo_db: Database) -> None:
    workflow_id = pending_for(demo_db, "devops@example.com")[0].workflow_id or ""
    [checks] = [r for r in ops.step_runs_of(demo_db, workflow_id) if r.step_name == "pre_deployment_checks"]
    assert checks.output
    at = sign_in(new_app(), "viewer@example.com")
    open_page(at, "workflow", workflow=workflow_id)
    no_exception(at)
    events = at.dataframe(key="workflow.events").value
    [change] = events.loc[events["event"] == "step.completed", "change"]
    assert "current_step: 0 → 1" in change
    assert "step_outputs.pre_deployment_checks." in change
    assert "$step_run" not in " ".join(events["change"])
