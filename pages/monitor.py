"""Monitor: how approvals and workflows are going, at a glance."""

from __future__ import annotations

import streamlit as st

from components import charts
from components.alerts import alerts_section
from components.analytics import analytics_section
from components.auth import signed_in
from components.services import get_services
from core.approvals import monitor as reports
from core.base.config import get_settings

DAYS = 30

user = signed_in()
db = get_services().db

st.title("Monitor")
if user.tenant is None:  # alerts are about the platform (runners, deliveries, every tenant)
    alerts_section(db, user)
totals = reports.approval_totals(db, tenant=user.tenant)
pending, expired, escalated, decided = st.columns(4)
pending.metric("Waiting for a decision", totals.get("pending", 0), border=True)
decided.metric("Decided", sum(totals.get(s, 0) for s in ("approved", "modified", "rejected")), border=True)
expired.metric("Expired", totals.get("expired", 0), border=True)
escalated.metric("Escalated", totals.get("escalated", 0), border=True)

per_day, to_decision = st.columns(2)
with per_day:
    rows = reports.approvals_per_day(db, days=DAYS, tenant=user.tenant)
    if rows:
        st.plotly_chart(charts.approvals_per_day_figure(rows), key="monitor.per_day")
    else:
        st.caption(f"No approval requests in the last {DAYS} days.")
with to_decision:
    st.plotly_chart(
        charts.time_to_decision_figure(reports.time_to_decision(db, tenant=user.tenant)),
        key="monitor.time_to_decision",
    )

by_status, heartbeat = st.columns(2)
with by_status:
    counts = reports.workflows_by_status(db, tenant=user.tenant)
    if counts:
        st.plotly_chart(charts.workflows_by_status_figure(counts), key="monitor.workflows")
    else:
        st.caption("No workflows yet.")
with heartbeat:
    lease = get_settings().lease_seconds
    runners = reports.runner_heartbeats(db, lease_seconds=lease)
    if runners:
        alive = sum(r.alive for r in runners)
        st.markdown(f"**{alive}** of {len(runners)} runners alive")
        st.plotly_chart(charts.heartbeat_figure(runners, lease), key="monitor.heartbeat")
    else:
        st.warning(
            "No runner has ever reported. Start one: `python -m core runner`, or run the "
            "dashboard without RUNNER=external."
        )

analytics_section(db, user.email)
