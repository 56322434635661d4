"""Workflow: one workflow, deep-linked as ?workflow=<id>: timeline, events, state, checkpoints."""

from __future__ import annotations

import streamlit as st

from components.auth import signed_in
from components.badges import badge_markdown
from components.checkpoints import checkpoint_browser
from components.controls import workflow_controls
from components.events import event_log
from components.feedback import show_error
from components.services import get_services
from components.text import md, md_lines
from components.timeline import timeline_figure
from components.waiting import position_text, waiting_notice
from components.workflows import stop_notice
from core.base.errors import CountersignError
from core.engine import workflows as ops
from core.engine.waits import waiting_on
from core.records import history

EVENT_ROWS = 500
TIMELINE_EVENTS = 5000

user = signed_in()
db = get_services().db
workflow_id = st.query_params.get("workflow")
if not workflow_id:
    st.title("Workflow")
    recent = ops.list_workflows(db, limit=20, tenant=user.tenant).rows
    chosen = st.selectbox(
        "Open a recent workflow",
        [None, *[w.id for w in recent]],
        key="workflow.pick",
        format_func=lambda i: (
            "Choose…"
            if i is None
            else next(f"{w.name} · {w.status} · {w.id[:8]}" for w in recent if w.id == i)
        ),
    )
    if chosen:
        st.query_params["workflow"] = chosen
        st.rerun()
    st.stop()

try:
    workflow = ops.get_workflow(db, workflow_id, tenant=user.tenant)
except CountersignError as exc:
    st.title("Workflow")
    show_error(exc)
    st.stop()

# The name, step names, description and error may all be an agent's words: text only.
st.title(md(workflow.name))
step_names = [str(step.get("name", "")) for step in workflow.definition.get("steps", [])]
st.markdown(
    f"{badge_markdown(workflow.status)} "
    f"{position_text(workflow.status, workflow.current_step, step_names)} · "
    f"started by {md(workflow.created_by)} · `{workflow.id}`"
)
waiting_notice(waiting_on(db, [workflow.id], viewer=user.email).get(workflow.id, []), key="workflow.waits")
if workflow.description:
    st.caption(md_lines(workflow.description))
stop_notice(db, workflow)  # a person's rejection reads as their decision, not a failure
workflow_controls(db, workflow, user)

# A widget (on_change="rerun"): the open tab is the session's, so it stays open through
# any rerun, e.g. the one after a rollback, whose result is drawn in Checkpoints. Keyed
# only, the choice lived in the browser and was sometimes lost when the page above the
# tabs changed (the rollback e2e test found its result in a hidden tab once).
timeline_tab, events_tab, state_tab, checkpoints_tab = st.tabs(
    ["Timeline", "Events", "State", "Checkpoints"], key="workflow.tabs", on_change="rerun"
)
with timeline_tab:
    runs = ops.step_runs_of(db, workflow.id)
    if runs:
        figure = timeline_figure(runs, ops.events_of(db, workflow.id, limit=TIMELINE_EVENTS))
        st.plotly_chart(figure, key="workflow.timeline", width="stretch")
    else:
        st.caption("No step has run yet.")
with events_tab:
    event_log(
        history.readable_events(db, ops.events_of(db, workflow.id, limit=EVENT_ROWS)),
        key="workflow.events",
        states=lambda event_id: history.states_at(db, workflow.id, event_id, tenant=user.tenant),
    )
with state_tab:
    st.json(
        {
            "status": workflow.status,
            "current_step": workflow.current_step,
            "context": workflow.context,
            "step_outputs": workflow.step_outputs,
            "input": workflow.input_data,
        },
        expanded=2,
    )
with checkpoints_tab:
    checkpoint_browser(db, workflow, user)
