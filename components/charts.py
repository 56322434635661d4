"""Monitor charts: plotly figures from core.approvals.inbox aggregates (pure, no Streamlit)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

if TYPE_CHECKING:
    from core.approvals.monitor import RunnerState

OUTCOME_COLOURS = {
    "approved": "#2e7d32",
    "modified": "#66bb6a",
    "rejected": "#c62828",
    "expired": "#ef6c00",
    "cancelled": "#9e9e9e",
    "pending": "#1565c0",
}
WORKFLOW_COLOURS = {
    "completed": "#2e7d32",
    "running": "#1565c0",
    "waiting_approval": "#ef6c00",
    "paused": "#9e9e9e",
    "failed": "#c62828",
    "cancelled": "#616161",
    "pending": "#90caf9",
}


def approvals_per_day_figure(rows: Sequence[tuple[str, str, int]]) -> go.Figure:
    frame = pd.DataFrame(rows, columns=["day", "outcome", "requests"])
    figure = px.bar(
        frame,
        x="day",
        y="requests",
        color="outcome",
        barmode="stack",
        color_discrete_map=OUTCOME_COLOURS,
        title="Approval requests per day",
    )
    figure.update_layout(xaxis_title=None, legend_title=None, height=320)
    return figure


def time_to_decision_figure(buckets: Sequence[tuple[str, int]]) -> go.Figure:
    figure = go.Figure(go.Bar(x=[b for b, _ in buckets], y=[n for _, n in buckets], marker_color="#1565c0"))
    figure.update_layout(title="Time to decision", yaxis_title="decisions", height=320)
    return figure


def workflows_by_status_figure(counts: dict[str, int]) -> go.Figure:
    labels = sorted(counts, key=lambda s: -counts[s])
    figure = go.Figure(
        go.Bar(
            x=[counts[s] for s in labels],
            y=labels,
            orientation="h",
            marker_color=[WORKFLOW_COLOURS.get(s, "#607d8b") for s in labels],
        )
    )
    figure.update_layout(title="Workflows by status", height=320, yaxis={"autorange": "reversed"})
    return figure


def heartbeat_figure(runners: Sequence[RunnerState], lease_seconds: float) -> go.Figure:
    figure = go.Figure(
        go.Bar(
            x=[r.seconds_since_seen for r in runners],
            y=[r.runner_id for r in runners],
            orientation="h",
            marker_color=["#2e7d32" if r.alive else "#c62828" for r in runners],
            customdata=[[r.hostname, r.pid, r.steps_executed] for r in runners],
            hovertemplate="%{y}<br>seen %{x:.0f}s ago<br>%{customdata[0]} pid %{customdata[1]}"
            "<br>%{customdata[2]} steps<extra></extra>",
        )
    )
    figure.add_vline(x=lease_seconds, line_dash="dash", annotation_text="lease")
    figure.update_layout(
        title="Runner heartbeat (seconds since last seen)", height=max(200, 80 + 30 * len(runners))
    )
    return figure
