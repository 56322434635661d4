"""Approval analytics figures (plotly) from core.ops.analytics (pure, no Streamlit)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from core.ops.analytics import RUBBER_STAMP_SECONDS, DecisionTime, RubberStamps

BY_TITLES = {"type": "approval type", "approver": "approver", "channel": "channel"}


def _readable(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def decision_time_figure(times: Sequence[DecisionTime], by: str) -> go.Figure:
    """p50 and p90 time to decision in minutes, one pair of bars per key (labels readable)."""
    keys = [t.key for t in times]
    figure = go.Figure(
        [
            go.Bar(
                name="p50",
                x=keys,
                y=[t.p50 / 60 for t in times],
                marker_color="#1565c0",
                text=[_readable(t.p50) for t in times],
                customdata=[t.count for t in times],
                hovertemplate="%{x}: p50 %{text} (%{customdata} answers)<extra></extra>",
            ),
            go.Bar(
                name="p90",
                x=keys,
                y=[t.p90 / 60 for t in times],
                marker_color="#90caf9",
                text=[_readable(t.p90) for t in times],
                customdata=[t.count for t in times],
                hovertemplate="%{x}: p90 %{text} (%{customdata} answers)<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        title=f"Time to decision by {BY_TITLES.get(by, by)}",
        barmode="group",
        yaxis={"title": "minutes"},
        height=320,
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def rubber_stamp_figure(stamps: Sequence[RubberStamps]) -> go.Figure:
    """Approvals given under the threshold per approver, against all their approvals."""
    approvers = [s.approver for s in stamps]
    figure = go.Figure(
        [
            go.Bar(
                name="all approvals", x=approvers, y=[s.approvals for s in stamps], marker_color="#c8e6c9"
            ),
            go.Bar(
                name=f"under {RUBBER_STAMP_SECONDS:g} s",
                x=approvers,
                y=[s.fast for s in stamps],
                marker_color="#c62828",
                text=[f"{s.share:.0%}" for s in stamps],
                hovertemplate="%{x}: %{y} approvals under "
                f"{RUBBER_STAMP_SECONDS:g} s (%{{text}})<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        title=f"Approved in under {RUBBER_STAMP_SECONDS:g} s (rubber-stamping)",
        barmode="overlay",
        height=320,
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


__all__ = ["decision_time_figure", "rubber_stamp_figure"]
