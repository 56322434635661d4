"""The Execution logs view: filters, one page of rows, and a CSV export of
everything the filters match (within the signed-in person's tenant)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from components.feedback import core_errors
from core.agents import execution_logs
from core.agents.execution_logs import KINDS, LEVELS, LogFilters, LogPage

if TYPE_CHECKING:
    from components.auth import SignedIn
    from core.store.db import Database

PAGE_SIZE = 50
TIME_RANGES: dict[str, timedelta | None] = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "All time": None,
    "Between dates": None,
}
DEFAULT_RANGE = "Last 7 days"
COLUMNS = ["time", "kind", "level", "workflow", "session", "step", "agent", "tool", "message", "duration_ms"]


def filters_form() -> LogFilters:
    """The filter widgets; ``?workflow=`` and ``?session=`` in the URL prefill the ids."""
    first, second, third = st.columns(3)
    span = first.selectbox(
        "Time range", list(TIME_RANGES), index=list(TIME_RANGES).index(DEFAULT_RANGE), key="logs.range"
    )
    kinds = second.multiselect("Kind", KINDS, key="logs.kinds")
    levels = third.multiselect("Level", LEVELS, key="logs.levels")
    first, second, third = st.columns(3)
    workflow_id = first.text_input(
        "Workflow id", value=st.query_params.get("workflow", ""), key="logs.workflow"
    )
    session_id = second.text_input("Session id", value=st.query_params.get("session", ""), key="logs.session")
    text = third.text_input("Message contains", key="logs.text")
    first, second = st.columns(2)
    agent = first.text_input("Agent", key="logs.agent")
    tool = second.text_input("Tool", key="logs.tool")
    back = TIME_RANGES[span]
    since, until = (datetime.now(UTC) - back if back else None), None
    if span == "Between dates":
        since, until = _between_dates()
    return LogFilters(
        since=since,
        until=until,
        kinds=tuple(kinds),
        levels=tuple(levels),
        workflow_id=workflow_id or None,
        session_id=session_id or None,
        agent=agent or None,
        tool_name=tool or None,
        text=text or None,
    )


def _between_dates() -> tuple[datetime | None, datetime | None]:
    """Whole days in UTC, both ends included; until both ends are picked, no limit."""
    today = datetime.now(UTC).date()
    picked = st.date_input("From – to (UTC)", value=(today - timedelta(days=7), today), key="logs.dates")
    if not isinstance(picked, tuple) or len(picked) != 2:
        return None, None
    start, end = picked
    return (datetime.combine(start, time.min, UTC), datetime.combine(end, time.max, UTC))


def logs_frame(page: LogPage) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "time": r.created_at,
                "kind": r.kind,
                "level": r.level,
                "workflow": f"workflow?workflow={r.workflow_id}" if r.workflow_id else None,
                # Relative links (new tab), so a server under a base path keeps them. A session's
                # link opens it on the Sessions page (pages/sessions.py, deep link ?session=<id>).
                "session": f"sessions?session={r.session_id}" if r.session_id else None,
                "step": r.step_name,
                "agent": r.agent,
                "tool": r.tool_name,
                "message": r.message,
                "duration_ms": r.duration_ms,
            }
            for r in page.rows
        ],
        columns=COLUMNS,
    )


def logs_table(page: LogPage) -> None:
    st.dataframe(
        logs_frame(page),
        hide_index=True,
        width="stretch",
        key="logs.table",
        column_config={
            "time": st.column_config.DatetimeColumn("time", format="YYYY-MM-DD HH:mm:ss"),
            "workflow": st.column_config.LinkColumn("workflow", display_text=r"workflow=(.{8})"),
            "session": st.column_config.LinkColumn("session", display_text=r"session=(.{8})"),
            "message": st.column_config.TextColumn("message", width="large"),
        },
    )


def execution_logs_view(db: Database, user: SignedIn) -> None:
    scope = user.tenant  # None: the platform, which sees every tenant
    if scope is not None:
        st.caption(f"Tenant **{scope}**: only its rows are shown.")
    filters = filters_form()
    with core_errors():
        filters.check()
        total = execution_logs.query(db, filters, scope, page=1, page_size=PAGE_SIZE, actor=user.email)
        pages = total.pages
        number = (
            st.number_input(
                f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key="logs.page"
            )
            if pages > 1
            else 1
        )
        page = (
            total
            if number == 1
            else execution_logs.query(
                db, filters, scope, page=int(number), page_size=PAGE_SIZE, actor=user.email
            )
        )
        st.markdown(f"**{page.total}** matching rows · page {page.page} of {page.pages}")
        logs_table(page)
        # The export runs when the button is clicked, not on every rerun of the page.
        st.download_button(
            "Download CSV",
            data=lambda: csv_export(db, filters, scope, user.email),
            file_name="execution-logs.csv",
            mime="text/csv",
            key="logs.download",
            disabled=page.total == 0,
        )


def csv_export(db: Database, filters: LogFilters, scope: str | None, actor: str | None = None) -> str:
    return execution_logs.to_csv(execution_logs.export_rows(db, filters, scope, actor=actor))
