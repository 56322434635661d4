"""Approval: one request, deep-linked as ?approval=<id>; what approving does, and the answer.

What the request shows comes from ``core.approvals.presentation.request_view`` only.
"""

from __future__ import annotations

import streamlit as st

from components.approvals import decision_panel, request_summary, votes_table
from components.auth import signed_in
from components.deliveries import deliveries_panel
from components.events import event_log
from components.feedback import show_error
from components.keyboard import keyboard_shortcuts
from components.nav import INBOX_PAGE
from components.outage import database_outage_notice
from components.reassign_panel import reassign_panel
from components.services import get_services
from core.approvals import inbox as reports
from core.approvals import inbox_views
from core.approvals.presentation import approval_page
from core.base.errors import CountersignError
from core.channels.notifications import notifications_for
from core.engine import workflows as ops
from core.records import history

RECENT_EVENTS = 15
LIVE_SECONDS = 3

user = signed_in()
services = get_services()
approval_id = st.query_params.get("approval") or st.query_params.get("id")
if not approval_id:
    st.title("Approval")
    st.info("Open a request from the Inbox, or follow the link in its notification.")
    st.page_link(INBOX_PAGE, label="Go to the Inbox", icon=":material/inbox:")
    st.stop()

try:
    approval, view = approval_page(services.approvals, approval_id, tenant=user.tenant)
except CountersignError as exc:
    st.title("Approval")
    show_error(exc)
    st.stop()

shown = inbox_views.status_of(services.db, approval.id)


@st.fragment(run_every=LIVE_SECONDS)
@database_outage_notice()
def redraw_when_answered_elsewhere() -> None:
    """A decision, a vote or a new level made elsewhere redraws the page within seconds."""
    if inbox_views.status_of(services.db, approval.id) != shown:
        st.rerun(scope="app")


redraw_when_answered_elsewhere()
names = reports.workflow_names(services.db, [approval.workflow_id or ""])
request_summary(view, approval.workflow_id, names.get(approval.workflow_id or ""))
decision_panel(services.db, services.approvals, approval, view, user)
keyboard_shortcuts("approval")
reassign_panel(services.db, approval, user.email)
votes_table(view)
with st.expander("Deliveries", expanded=False):
    deliveries_panel(
        services.db, notifications_for(services.db, approval.id), actor=user.email, can_retry=user.is_admin
    )
if approval.workflow_id:
    st.subheader("Recent events of the workflow")
    event_log(
        history.readable_events(
            services.db,
            ops.events_of(services.db, approval.workflow_id, limit=RECENT_EVENTS, tenant=user.tenant),
        ),
        key="approval.events",
        height=260,
    )
