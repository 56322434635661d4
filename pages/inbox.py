"""Inbox: the requests waiting for the signed-in person, most urgent first."""

from __future__ import annotations

import streamlit as st

from components.auth import signed_in
from components.inbox import inbox_rows
from components.outage import database_outage_notice
from components.services import get_services
from components.text import md
from core.approvals import inbox as reports

REFRESH_SECONDS = 10
PAGE_SIZE = 25

user = signed_in()
db = get_services().db
summary = reports.inbox_summary(db, user.email)

st.title("Inbox")
with st.sidebar:
    st.metric("Waiting for you", summary.total, border=True)
    st.metric("Expiring within 24 h", summary.expiring_soon, border=True)
    if summary.by_type:
        st.caption(" · ".join(f"{md(kind)} **{count}**" for kind, count in summary.by_type.items()))

workflow_col, type_col, channel_col = st.columns(3)
workflow_id = workflow_col.selectbox(
    "Workflow", [None, *summary.by_workflow], key="inbox.workflow",
    format_func=lambda w: "All workflows" if w is None else summary.by_workflow[w][0],
    help="The workflows of your most urgent requests.")
approval_type = type_col.selectbox(
    "Type", [None, *summary.types], key="inbox.type",
    format_func=lambda t: "All types" if t is None else f"{t} ({summary.by_type.get(t, 0)})")
channel = channel_col.selectbox(
    "Channel", [None, *summary.channels], key="inbox.channel",
    format_func=lambda c: "All channels" if c is None else f"Sent by {c}")
selected = reports.InboxFilter(workflow_id, approval_type, channel)
pages = max(1, -(-summary.total // PAGE_SIZE))
page = int(st.number_input("Page", 1, pages, 1, key="inbox.page")) if pages > 1 else 1


@st.fragment(run_every=REFRESH_SECONDS)
@database_outage_notice()  # its timed reruns run outside app.py's guard
def pending() -> None:
    approvals = reports.inbox(db, user.email, selected, limit=PAGE_SIZE,
                              offset=(page - 1) * PAGE_SIZE)
    names = reports.workflow_names(db, [a.workflow_id or "" for a in approvals])
    channels = reports.channels_of(db, [a.id for a in approvals])
    inbox_rows(approvals, names, channels)


pending()
