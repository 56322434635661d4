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
    from streamlit.delta_generator import DeltaGenerator

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
BETWEEN_DATES = "Between dates"
DEFAULT_RANGE = "Last 7 days"
COLUMNS = ["time", "kind", "level", "workflow", "session", "step", "agent", "tool", "message", "duration_ms"]


def filters_form() -> LogFilters:
    """The filters, in one form applied together (Apply, or Enter in a text box);
    ``?workflow=`` and ``?session=`` in the URL prefill the ids.

    Why a form: a text box commits its value when it loses focus, and clicking
    Download CSV straight after typing is what takes the focus away. Live, that
    click would race the rerun the new value starts and export the filters from
    before it. In a form, what the table shows and what the export holds are the
    applied filters until Apply is pressed."""
    with st.form("logs.filters", border=False, enter_to_submit=True):
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
        session_id = second.text_input(
            "Session id", value=st.query_params.get("session", ""), key="logs.session"
        )
        text = third.text_input("Message contains", key="logs.text")
        first, second, third = st.columns(3)
        agent = first.text_input("Agent", key="logs.agent")
        tool = second.text_input("Tool", key="logs.tool")
        dates = _dates(third)
        st.form_submit_button("Apply filters", key="logs.apply")
    back = TIME_RANGES[span]
    since, until = (datetime.now(UTC) - back if back else None), None
    if span == BETWEEN_DATES:
        since, until = dates
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


def _dates(column: DeltaGenerator) -> tuple[datetime | None, datetime | None]:
    """Whole days in UTC, both ends included, for the time range "Between dates"
    (shown always: a form draws no widget on another one's unapplied value); until
    both ends are picked, no limit."""
    today = datetime.now(UTC).date()
    picked = column.date_input(
        "From – to (UTC)",
        value=(today - timedelta(days=7), today),
        key="logs.dates",
        help=f'Used when the time range is "{BETWEEN_DATES}".',
    )
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
            "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
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
        download_button(db, filters, scope, user.email, disabled=page.total == 0)


def download_button(
    db: Database, filters: LogFilters, scope: str | None, actor: str, *, disabled: bool
) -> None:
    """Download CSV: the export runs when the button is clicked, not on every rerun.

    Why clicking does not rerun the page (``on_click="ignore"``): Streamlit gives
    the button a new file id on every run and forgets the old one when that run
    ends, so a click whose own rerun finished before the server looked its id up
    would find nothing, and the button would spin for good."""
    st.download_button(
        "Download CSV",
        data=lambda: csv_export(db, filters, scope, actor),
        file_name="execution-logs.csv",
        mime="text/csv",
        key="logs.download",
        on_click="ignore",
        disabled=disabled,
    )


def csv_export(db: Database, filters: LogFilters, scope: str | None, actor: str | None = None) -> str:
    return execution_logs.to_csv(execution_logs.export_rows(db, filters, scope, actor=actor))
