"""The Monitor's approval analytics section: figures from core.ops.analytics, drawn
with plotly, downloadable as CSV (no queries here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from components.analytics_charts import decision_time_figure, rubber_stamp_figure
from core.base.errors import NotAuthorized
from core.ops.analytics import WINDOW_DAYS, analytics_csv, approval_analytics

if TYPE_CHECKING:
    from core.store.db import Database


def analytics_section(db: Database, viewer: str) -> None:
    st.subheader(f"Approval analytics (last {WINDOW_DAYS} days)")
    try:
        figures = approval_analytics(db, viewer)
    except NotAuthorized as exc:
        st.caption(str(exc))
        return
    if not figures.requests:
        st.caption(f"No approval requests in the last {WINDOW_DAYS} days.")
        return
    requests, expired, escalated, by_rules = st.columns(4)
    requests.metric("Requests", figures.requests, border=True)
    expired.metric(
        "Expired",
        f"{figures.expired_share:.0%}",
        border=True,
        help=f"{figures.expired} of {figures.requests} requests expired",
    )
    escalated.metric(
        "Escalated",
        f"{figures.escalated_share:.0%}",
        border=True,
        help=f"{figures.escalated} of {figures.requests} requests were escalated",
    )
    by_rules.metric(
        "Released by standing rules",
        f"{figures.rules_share:.0%}",
        border=True,
        help=f"{figures.released_by_rules} of {figures.released} released calls needed nobody (Policies)",
    )
    for row in (("type", "channel"), ("approver", None)):
        columns = st.columns(2)
        for column, by in zip(columns, row, strict=True):
            with column:
                if by is None:
                    if figures.rubber_stamps:
                        st.plotly_chart(
                            rubber_stamp_figure(figures.rubber_stamps), key="monitor.analytics.rubber_stamps"
                        )
                    continue
                times = figures.times_by(by)
                if times:
                    st.plotly_chart(decision_time_figure(times, by), key=f"monitor.analytics.by_{by}")
                else:
                    st.caption(f"No decisions by {by} yet.")
    st.download_button(
        "Download analytics CSV",
        data=analytics_csv(figures),
        file_name="approval-analytics.csv",
        mime="text/csv",
        key="monitor.analytics.download",
        on_click="ignore",  # a download needs no rerun of the whole Monitor page
    )
