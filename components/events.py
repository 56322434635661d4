"""The event log as a table, with each event's before/after shown as a diff."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from components.diff import diff_summary, json_diff, short
from components.text import md

if TYPE_CHECKING:
    from core.store.tables import WorkflowEvent


def _data_summary(event: WorkflowEvent) -> str:
    data = dict(event.data or {})
    for noisy in ("compensations", "input"):
        data.pop(noisy, None)
    return short(data, 120) if data else ""


def events_frame(events: Sequence[WorkflowEvent]) -> pd.DataFrame:
    """One row per event, newest first; ``change`` is the before → after diff."""
    return pd.DataFrame(
        [
            {
                "id": e.id,
                "time": e.created_at,
                "event": e.event_type,
                "actor": e.actor,
                "step": e.step_name or "",
                "change": diff_summary(e.before, e.after) if (e.before or e.after) else "",
                "details": _data_summary(e),
            }
            for e in reversed(events)
        ],
        columns=["id", "time", "event", "actor", "step", "change", "details"],
    )


def diff_table(before: Any, after: Any, *, key: str, labels: tuple[str, str] = ("before", "after")) -> None:
    changes = json_diff(before, after)
    if not changes:
        st.caption("No differences.")
        return
    st.dataframe(
        pd.DataFrame(
            [{"path": path, labels[0]: short(a, 200), labels[1]: short(b, 200)} for path, a, b in changes]
        ),
        hide_index=True,
        width="stretch",
        key=key,
    )


# The workflow's whole state just before and after an event (core.records.history.states_at).
States = Callable[[int], tuple[dict[str, Any], dict[str, Any]]]


def event_log(
    events: Sequence[WorkflowEvent | Any], *, key: str, height: int = 360, states: States | None = None
) -> None:
    """The table; pick a row to see its before/after diff and full data.

    Events record what changed (a step's output as a reference to its run):
    pass them through ``core.records.history.readable`` to show outputs, and give
    ``states`` to diff the whole state before and after the picked event,
    folded from the events (core.records.history).
    """
    if not events:
        st.caption("No events yet.")
        return
    frame = events_frame(events)
    picked = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=height,
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        column_config={"time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss")},
    )
    rows = picked.selection.rows if picked is not None else []
    if not rows:
        st.caption("Select an event to see its before/after diff.")
        return
    event = list(reversed(events))[rows[0]]
    st.markdown(
        f"**{md(event.event_type)}** by {md(event.actor)} at {event.created_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    if states is not None and (event.before or event.after):
        before, after = states(event.id)
        diff_table(before, after, key=f"{key}.diff")
        with st.expander("Whole state after this event"):
            st.json(after, expanded=1)
    elif event.before or event.after:
        diff_table(event.before, event.after, key=f"{key}.diff")
    if event.data:
        st.code(json.dumps(event.data, indent=2, default=str), language="json")
