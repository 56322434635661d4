"""The checkpoint browser and the rollback dialog."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from components.diff import json_diff
from components.events import diff_table
from components.feedback import show_error
from components.text import md
from core.base.errors import CountersignError
from core.engine import workflows as ops
from core.engine.checkpoints import rollback
from core.engine.tools import default_registry
from core.engine.waits import RollbackPlan, rollback_plan
from core.identity.permissions import Action, allowed

if TYPE_CHECKING:
    from core.store.db import Database
    from core.store.tables import Workflow, WorkflowCheckpoint

OPEN = "rollback.open"  # the checkpoint name whose dialog is open
RESULT = "rollback.result"


def state_of(item: Workflow | WorkflowCheckpoint) -> dict[str, Any]:
    """What a rollback restores: position, context and step outputs."""
    # A workflow row has current_step; a checkpoint row has step_index.
    position = item.current_step if hasattr(item, "current_step") else item.step_index
    return {"current_step": position, "context": item.context, "step_outputs": item.step_outputs}


def _close() -> None:
    st.session_state.pop(OPEN, None)


@st.dialog("Roll back", on_dismiss=_close)
def rollback_dialog(db: Database, workflow_id: str, checkpoint_name: str, actor: str) -> None:
    st.markdown(f"Roll the workflow back to checkpoint **{md(checkpoint_name)}**?")
    st.caption(
        "Open approvals are cancelled, every step completed after the checkpoint is "
        "compensated (newest first), and the workflow stays paused until resumed."
    )
    try:
        plan = rollback_plan(db, default_registry, workflow_id, checkpoint_name, actor)
    except CountersignError as exc:
        show_error(exc)
        return
    planned_rollback(plan)
    with st.form("rollback.form", border=False):
        reason = st.text_input("Reason", key="rollback.reason", placeholder="Why (kept in the audit trail)")
        sure = st.checkbox("Yes, roll back and compensate the later steps", key="rollback.confirm")
        confirmed = st.form_submit_button("Confirm rollback", key="rollback.submit", type="primary")
    if st.button("Cancel", key="rollback.cancel"):
        _close()
        st.rerun()
    if not confirmed:
        return
    if not reason.strip():
        st.error("Give a reason for the rollback.")
        return
    if not sure:
        st.error("Tick the confirmation to roll back.")
        return
    try:
        result = rollback(
            db,
            default_registry,
            workflow_id,
            checkpoint_name=checkpoint_name,
            reason=reason.strip(),
            actor=actor,
        )
    except CountersignError as exc:
        show_error(exc)
        return
    st.session_state[RESULT] = dataclasses.asdict(result)
    _close()
    st.rerun()


def planned_rollback(plan: RollbackPlan) -> None:
    """What confirming will do, before it is confirmed."""
    if plan.compensations:
        st.markdown("**Compensations that will run** (newest step first):")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "step": c.step,
                        "compensation": c.tool or "(nothing to undo)",
                    }
                    for c in plan.compensations
                ]
            ),
            hide_index=True,
            width="stretch",
            key="rollback.plan",
        )
    else:
        st.markdown("**Compensations that will run:** none (no step completed after it)")
    cancelled = ", ".join(plan.cancelled_requests)
    st.markdown("**Requests that will be cancelled:** " + (md(cancelled) if cancelled else "none"))


def rollback_result(result: dict[str, Any]) -> None:
    st.success(
        f"Rolled back to **{md(result['checkpoint'])}**. The workflow is paused there; resume it when ready.",
        icon=":material/history:",
    )
    cancelled = result.get("cancelled_approvals") or []
    st.markdown("**Cancelled approvals:** " + (md(", ".join(cancelled)) if cancelled else "none"))
    compensations = result.get("compensations") or []
    if compensations:
        st.markdown("**Compensations that ran** (newest step first):")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "step": c.get("step"),
                        "tool": c.get("tool") or "(nothing to undo)",
                        "result": str(c.get("result", "")),
                    }
                    for c in compensations
                ]
            ),
            hide_index=True,
            width="stretch",
            key="rollback.compensations",
        )
    else:
        st.markdown("**Compensations that ran:** none")


def checkpoint_browser(db: Database, workflow: Workflow, user: Any) -> None:
    """Checkpoints (time, step, who), a diff against now, and Rollback for whoever may
    (workflows:rollback: admins)."""
    result = st.session_state.get(RESULT)
    if result and result.get("workflow_id") == workflow.id:
        rollback_result(result)
    checkpoints = ops.checkpoints_of(db, workflow.id)
    if not checkpoints:
        st.caption(
            "No checkpoints yet: they are taken before each approval and after steps "
            "marked create_checkpoint."
        )
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "time": c.created_at,
                    "name": c.name,
                    "step": c.step_name or f"#{c.step_index + 1}",
                    "who": c.created_by,
                    "state": "superseded" if c.superseded_by_event_id else "active",
                }
                for c in reversed(checkpoints)
            ]
        ),
        hide_index=True,
        width="stretch",
        key="checkpoints.table",
    )
    active = [c for c in reversed(checkpoints) if c.superseded_by_event_id is None]
    if not active:
        st.caption("Every checkpoint was superseded by a rollback to an earlier one.")
        return
    by_name = {c.name: c for c in active}
    name = st.selectbox(
        "Checkpoint",
        list(by_name),
        key="checkpoints.pick",
        format_func=lambda n: f"{n} ({by_name[n].created_at:%Y-%m-%d %H:%M:%S} UTC)",
    )
    chosen = by_name[name] if name in by_name else active[0]
    st.markdown(f"Differences between **{md(chosen.name)}** and the current state:")
    diff_table(state_of(chosen), state_of(workflow), key="checkpoints.diff", labels=("checkpoint", "now"))
    # Nothing differs: rolling back would change nothing, so it is not the suggested action.
    differs = bool(json_diff(state_of(chosen), state_of(workflow)))
    if not allowed(db, user.email, Action.WORKFLOWS_ROLLBACK, workflow=workflow):
        st.caption("Only admins can roll back.")
        return
    if st.button(
        "Rollback",
        key="checkpoints.rollback",
        type="primary" if differs else "secondary",
        icon=":material/history:",
    ):
        st.session_state[OPEN] = chosen.name
        st.session_state.pop(RESULT, None)
    if st.session_state.get(OPEN):
        rollback_dialog(db, workflow.id, st.session_state[OPEN], user.email)
