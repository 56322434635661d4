"""Workflows: every workflow, filtered and paged on the server; start new ones."""

from __future__ import annotations

import streamlit as st

from components.auth import signed_in
from components.nav import WORKFLOW_PAGE
from components.services import get_services
from components.waiting import waiting_notice
from components.workflows import (
    start_from_template,
    start_from_text,
    started_notice,
    workflow_table,
)
from core.base.states import WORKFLOW_STATUSES
from core.engine import workflows as ops
from core.engine.waits import waiting_on
from core.identity.permissions import Action, allowed

PAGE_SIZES = (25, 50, 100)

user = signed_in()
db = get_services().db

st.title("Workflows")
started_notice()
status_col, search_col, size_col = st.columns([2, 3, 1])
statuses = status_col.multiselect(
    "Status", list(WORKFLOW_STATUSES), key="workflows.status", placeholder="All statuses"
)
search = search_col.text_input("Search", key="workflows.search", placeholder="Name or id contains…")
size = size_col.selectbox("Per page", PAGE_SIZES, key="workflows.size")
filters = {"status": statuses or None, "search": search.strip() or None, "tenant": user.tenant}
page = int(st.session_state.get("workflows.page", 1))
listing = ops.list_workflows(db, **filters, limit=size, offset=(page - 1) * size)  # type: ignore[arg-type]
pages = max(1, -(-listing.total // size))
if page > pages:  # the filter shrank the list under the page shown
    page = st.session_state["workflows.page"] = 1
    listing = ops.list_workflows(db, **filters, limit=size, offset=0)  # type: ignore[arg-type]
st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, key="workflows.page")
st.caption(
    f"{listing.total} workflows · showing {len(listing.rows)} from "
    f"{(page - 1) * size + 1 if listing.rows else 0}"
)
waits = waiting_on(db, [w.id for w in listing.rows], viewer=user.email)
chosen = workflow_table(listing.rows, key="workflows.table", waits=waits)
if chosen:
    st.page_link(
        WORKFLOW_PAGE,
        label="Open the selected workflow",
        icon=":material/timeline:",
        query_params={"workflow": chosen},
    )
    waiting_notice(waits.get(chosen, []), key="workflows.waits")

if allowed(db, user.email, Action.WORKFLOWS_START):
    st.header("Start a workflow")
    # Keyed: a refusal redraws the page, and the open tab must stay open to show it.
    template_tab, paste_tab = st.tabs(["From a template", "From JSON or YAML"], key="workflows.start_tabs")
    with template_tab:
        start_from_template(db, user.email)
    with paste_tab:
        start_from_text(db, user.email)
