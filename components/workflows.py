"""Workflow widgets: the paged list and the two ways to start one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from components.feedback import show_error
from components.nav import APPROVAL_PAGE, WORKFLOW_PAGE
from components.text import md, md_lines
from core.base.errors import CountersignError, DefinitionError
from core.base.storable import load_json
from core.definitions.definition_text import load_definition_file, load_definition_text
from core.definitions.workflow import WorkflowDefinition
from core.demo.scenarios import DEMO_INPUTS, template_names, template_path
from core.engine import workflows as ops
from core.engine.after_decision import rejection_of
from core.engine.tools import default_registry
from core.engine.waits import Waiting

if TYPE_CHECKING:
    from core.store.db import Database
    from core.store.tables import Workflow

STARTED = "workflows.started"
# What the list's link to a waiting workflow's request says.
REQUEST_LINK_TEXT = "Open the request"


def request_link(wait: Waiting) -> str:
    """The Approval page's deep link to ``wait``'s request, relative to the dashboard."""
    return "approval?" + urlencode({"approval": wait.approval_id})


def workflow_table(
    rows: Sequence[Workflow], *, key: str, waits: dict[str, list[Waiting]] | None = None
) -> str | None:
    """The page of workflows (with who each waiting one waits for, and a link to the request
    it waits for); the id of a selected row."""
    waits = waits or {}
    frame = pd.DataFrame(
        [
            {
                "name": w.name,
                "status": w.status,
                # The oldest open request's deep link, relative (a server under a base path
                # keeps it): the Approval page, one click from the list, before the long
                # "waits for" text so it stays in view.
                "request": request_link(waits[w.id][0]) if waits.get(w.id) else None,
                "waits for": "; ".join(f"{', '.join(x.approvers)}: {x.title}" for x in waits.get(w.id, [])),
                "step": w.current_step + 1 if w.status != "completed" else None,
                "steps": len(w.definition.get("steps", [])),
                "created": w.created_at,
                "updated": w.updated_at,
                "by": w.created_by,
                "id": w.id,
            }
            for w in rows
        ],
        columns=["name", "status", "request", "waits for", "step", "steps", "created", "updated", "by", "id"],
    )
    picked = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        column_config={"request": st.column_config.LinkColumn("request", display_text=REQUEST_LINK_TEXT)},
    )
    selected = picked.selection.rows if picked is not None else []
    return rows[selected[0]].id if selected else None


def stop_notice(db: Database, workflow: Workflow) -> None:
    """Why the workflow stopped: a person's rejection as a warning that says who said no
    and why, with a link to the request (``core.engine.after_decision.rejection_of``); any
    other error as an error."""
    if not workflow.error:
        return
    rejected = rejection_of(db, workflow.id)
    if rejected is None:
        st.error(md_lines(workflow.error))
        return
    with st.container(key="workflow.stopped"):
        # The step's name and the comment may be anyone's words: escaped.
        st.warning(md(rejected.sentence), icon=":material/front_hand:")
        st.page_link(
            APPROVAL_PAGE,
            label="Open the rejected request",
            icon=":material/approval:",
            query_params={"approval": rejected.approval_id},
        )


def _input_json(raw: str) -> dict[str, Any] | None:
    try:  # measured before it is parsed (64 levels): json.loads recurses
        value = load_json(raw or "{}", "Input")
    except ValueError as exc:
        st.error(md(exc))
        return None
    if not isinstance(value, dict):
        st.error("Input: must be a JSON object.")
        return None
    return value


def _start(db: Database, definition: WorkflowDefinition, input_data: dict[str, Any], actor: str) -> None:
    try:
        # The dashboard's process loads the runners' tool modules: an unknown tool is refused now.
        workflow = ops.create_workflow(
            db, definition, input_data=input_data, created_by=actor, tools=default_registry
        )
    except CountersignError as exc:
        show_error(exc)
        return
    st.session_state[STARTED] = {"id": workflow.id, "name": workflow.name}
    st.rerun()


def started_notice() -> None:
    started = st.session_state.pop(STARTED, None)
    if started:
        st.success(f"Started **{md(started['name'])}**.", icon=":material/play_circle:")
        st.page_link(
            WORKFLOW_PAGE,
            label="Open it",
            icon=":material/timeline:",
            query_params={"workflow": started["id"]},
        )


def start_from_template(db: Database, actor: str) -> None:
    names = template_names()
    with st.form("start.template"):
        name = st.selectbox("Template", names, key="start.template.name")
        raw = st.text_area(
            "Input (JSON)",
            key="start.template.input",
            placeholder="Leave empty to use the template's example input",
            help="The workflow's input; templates refer to it as ${input.<name>}.",
        )
        submitted = st.form_submit_button("Start workflow", key="start.template.submit", type="primary")
    if not submitted or name is None:
        return
    input_data = _input_json(raw) if raw.strip() else dict(DEMO_INPUTS.get(name, {}))
    if input_data is None:
        return
    try:
        definition = load_definition_file(template_path(name))
    except DefinitionError as exc:
        show_error(exc)
        return
    _start(db, definition, input_data, actor)


def start_from_text(db: Database, actor: str) -> None:
    with st.form("start.paste"):
        text = st.text_area(
            "Definition (JSON or YAML)",
            key="start.paste.definition",
            height=260,
            placeholder="name: My workflow\nsteps:\n  - name: ask\n    type: approval",
        )
        raw = st.text_area("Input (JSON)", key="start.paste.input", value="{}")
        submitted = st.form_submit_button("Validate and start", key="start.paste.submit", type="primary")
    if not submitted:
        return
    if not text.strip():
        st.error("Paste a workflow definition first.")
        return
    try:
        # The runners' tools are known here: an unknown one is named with every other problem.
        definition = load_definition_text(text, tools=default_registry)
    except DefinitionError as exc:
        show_error(exc)
        return
    input_data = _input_json(raw)
    if input_data is not None:
        _start(db, definition, input_data, actor)
