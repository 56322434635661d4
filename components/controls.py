"""Pause, resume, retry and cancel buttons for one workflow, each shown only to
whoever core.identity.permissions allows it (admins; approvers all but cancel; the
workflow's starter pause, resume and cancel)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from components.feedback import show_error
from components.text import md
from core.base.errors import CountersignError
from core.base.states import CANCELLABLE, PAUSABLE
from core.engine import workflows as ops
from core.identity.permissions import Action, actions_for

if TYPE_CHECKING:
    from core.store.db import Database
    from core.store.tables import Workflow

FLASH = "workflow.flash"
STEERING = frozenset(
    {Action.WORKFLOWS_PAUSE, Action.WORKFLOWS_RESUME, Action.WORKFLOWS_RETRY, Action.WORKFLOWS_CANCEL}
)


def _act(action: str, db: Database, workflow_id: str, actor: str) -> None:
    try:
        if action == "pause":
            ops.pause_workflow(db, workflow_id, actor, reason="paused from the dashboard")
        elif action == "resume":
            ops.resume_workflow(db, workflow_id, actor)
        elif action == "cancel":
            ops.cancel_workflow(db, workflow_id, actor, reason="cancelled from the dashboard")
        elif action == "retry":
            ops.retry_workflow(db, workflow_id, actor)
    except CountersignError as exc:
        show_error(exc)
        return
    st.session_state[FLASH] = {
        "pause": "Paused.",
        "resume": "Resumed.",
        "cancel": "Cancelled.",
        "retry": "Retrying from the failed step.",
    }[action]
    st.rerun()


def workflow_controls(db: Database, workflow: Workflow, user: Any) -> None:
    """The buttons ``user`` may use on ``workflow`` now (core.identity.permissions decides)."""
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.success(flash)
    can = actions_for(db, user.email, workflow=workflow)
    if not can & STEERING:
        st.caption(
            "Viewers cannot steer workflows." if user.role == "viewer" else "You cannot steer this workflow."
        )
        return
    columns = st.columns(4)
    if (
        Action.WORKFLOWS_PAUSE in can
        and workflow.status in PAUSABLE
        and columns[0].button("Pause", key="workflow.pause", icon=":material/pause:")
    ):
        _act("pause", db, workflow.id, user.email)
    if (
        Action.WORKFLOWS_RESUME in can
        and workflow.status == "paused"
        and columns[0].button("Resume", key="workflow.resume", icon=":material/play_arrow:")
    ):
        _act("resume", db, workflow.id, user.email)
    if (
        Action.WORKFLOWS_RETRY in can
        and workflow.status == "failed"
        and columns[1].button(
            f"Retry from {md(ops.failed_step_name(workflow) or 'the failed step')}",
            key="workflow.retry",
            icon=":material/replay:",
            help="Runs the failed step again; the steps before it keep their results.",
        )
    ):
        _act("retry", db, workflow.id, user.email)
    if Action.WORKFLOWS_CANCEL not in can or workflow.status not in CANCELLABLE:
        return
    with columns[2].popover("Cancel workflow", icon=":material/cancel:"):
        st.caption("Cancelling stops the workflow for good and cancels its open approvals.")
        if st.button("Yes, cancel it", key="workflow.cancel", type="primary"):
            _act("cancel", db, workflow.id, user.email)
