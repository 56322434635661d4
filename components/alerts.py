"""The Monitor's alerts: open ones with severity, age, a link to their subject and
an Acknowledge button; recently resolved ones below."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import streamlit as st

from components.feedback import core_errors
from components.nav import APPROVAL_PAGE, WORKFLOW_PAGE
from components.text import md, md_lines
from core.base.clock import utcnow
from core.identity.permissions import Action, allowed
from core.ops import alerts

if TYPE_CHECKING:
    from components.auth import SignedIn
    from core.store.db import Database
    from core.store.tables import Alert

SEVERITY_COLOURS = {"critical": "red", "warning": "orange"}


def age(raised_at: datetime) -> str:
    seconds = max(0.0, (utcnow() - raised_at).total_seconds())
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _subject_link(alert: Alert) -> None:
    data = alert.data or {}
    if data.get("approval_id"):
        st.page_link(
            APPROVAL_PAGE,
            label="Open the approval request",
            icon=":material/approval:",
            query_params={"approval": str(data["approval_id"])},
        )
    elif data.get("workflow_id"):
        st.page_link(
            WORKFLOW_PAGE,
            label="Open the workflow",
            icon=":material/timeline:",
            query_params={"workflow": str(data["workflow_id"])},
        )


def _open_alert(db: Database, alert: Alert, user: SignedIn) -> None:
    with st.container(border=True, key=f"alerts.open.{alert.id}"):
        colour = SEVERITY_COLOURS.get(alert.severity, "gray")
        title = alerts.alert_title(alert)  # a workflow a rejection stopped is named so
        st.markdown(f":{colour}-badge[{md(alert.severity)}] **{md(title)}** · {age(alert.raised_at)}")
        # Alert text quotes workflow names and errors: literal, never Markdown.
        st.markdown(md_lines(alert.message))
        _subject_link(alert)
        if alert.acknowledged_at is not None:
            st.caption(f"Acknowledged by {md(alert.acknowledged_by or '')} {age(alert.acknowledged_at)}")
        elif allowed(db, user.email, Action.ALERTS_ACKNOWLEDGE) and st.button(
            "Acknowledge", key=f"alerts.ack.{alert.id}"
        ):
            with core_errors():
                alerts.acknowledge_alert(db, alert.id, user.email)
                st.rerun()


def alerts_section(db: Database, user: SignedIn) -> None:
    st.subheader("Alerts")
    opened = alerts.open_alerts(db)
    if not opened:
        st.success("No open alerts.", icon=":material/check_circle:")
    for alert in opened:
        _open_alert(db, alert, user)
    resolved = alerts.resolved_alerts(db)
    if resolved:
        with st.expander(f"Resolved in the last 7 days ({len(resolved)})", expanded=False):
            st.dataframe(
                {
                    "rule": [alerts.alert_title(a) for a in resolved],
                    "severity": [a.severity for a in resolved],
                    "message": [a.message for a in resolved],
                    "raised": [a.raised_at for a in resolved],
                    "resolved": [a.resolved_at for a in resolved],
                    "acknowledged by": [a.acknowledged_by or "" for a in resolved],
                },
                hide_index=True,
                key="alerts.resolved",
            )
