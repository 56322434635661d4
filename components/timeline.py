"""The workflow timeline: a plotly figure built from step runs and events.

Markers on a step's row: approval requested, each vote (who, what, through which
channel, at which level, the comment), the decision, escalations, cancellations,
checkpoints taken, agent steps; rollbacks on the workflow's row.

A pure function (no Streamlit), so it is tested on its own. Every bar is in
one ``go.Bar`` trace with ``base`` (start) and a length (duration): plotly
slows down past a few thousand traces or bars, so a long history is
aggregated into at most ``max_bars`` bars, one per step, outcome and time
bucket, each saying how many runs it stands for.

Plotly reads a little HTML in its labels and hover text (``<a href>`` makes a
link): step names, actors and details, which an agent may have written, go in
HTML-escaped, so they show as written.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import plotly.graph_objects as go

from core.base.clock import utcnow

MAX_BARS = 2000
MAX_MARKERS = 2000
OUTCOME_COLOURS = {
    "completed": "#2e7d32",
    "failed": "#c62828",
    "running": "#1565c0",
    "waiting_approval": "#ef6c00",
    "skipped": "#9e9e9e",
    "rolled_back": "#6a1b9a",
    "compensated": "#8d6e63",
}
OTHER_COLOUR = "#607d8b"
# Event type -> (legend name, marker symbol, colour)
MARKERS = {
    "approval.requested": ("approval requested", "diamond-open", "#ef6c00"),
    # One marker per vote: who (the hover's actor line), what, through which channel.
    "approval.responded": ("vote", "circle-open", "#1565c0"),
    "approval.decided": ("approval decided", "diamond", "#ef6c00"),
    "approval.escalated": ("approval escalated", "triangle-up", "#d84315"),
    "approval.cancelled": ("approval cancelled", "diamond-x", "#757575"),
    "checkpoint.created": ("checkpoint", "square-open", "#455a64"),
    "workflow.rolled_back": ("rollback", "x", "#6a1b9a"),
    "agent.step": ("agent step", "circle", "#00838f"),
    "agent.paused": ("agent asked a person", "hourglass", "#ef6c00"),
}
WORKFLOW_ROW = "(workflow)"


class StepRunLike(Protocol):
    step_index: int
    step_name: str
    status: str
    attempt: int
    started_at: datetime
    finished_at: datetime | None


class EventLike(Protocol):
    event_type: str
    created_at: datetime
    step_name: str | None
    actor: str
    data: dict[str, Any]


@dataclass
class _Bar:
    row: str
    status: str
    start: datetime
    end: datetime
    runs: int
    detail: str


def _text(value: Any) -> str:
    """Text for plotly's labels and hover: its pseudo-HTML escaped."""
    return html.escape(str(value), quote=False)


def _row(step_index: int, step_name: str) -> str:
    return f"{step_index + 1}. {_text(step_name)}"


def _bars(runs: Sequence[StepRunLike], now: datetime) -> list[_Bar]:
    return [
        _Bar(
            _row(r.step_index, r.step_name),
            r.status,
            r.started_at,
            r.finished_at or now,
            1,
            f"attempt {r.attempt}",
        )
        for r in runs
    ]


def aggregate(bars: list[_Bar], max_bars: int) -> list[_Bar]:
    """At most ``max_bars`` bars: one per row, outcome and time bucket."""
    if len(bars) <= max_bars:
        return bars
    groups = {(b.row, b.status) for b in bars}
    buckets = max(1, max_bars // max(1, len(groups)))
    first = min(b.start for b in bars)
    span = max((max(b.start for b in bars) - first).total_seconds(), 1e-6)
    merged: dict[tuple[str, str, int], _Bar] = {}
    for bar in bars:
        index = min(buckets - 1, int((bar.start - first).total_seconds() / span * buckets))
        key = (bar.row, bar.status, index)
        seen = merged.get(key)
        if seen is None:
            merged[key] = _Bar(bar.row, bar.status, bar.start, bar.end, 1, "")
        else:
            seen.start = min(seen.start, bar.start)
            seen.end = max(seen.end, bar.end)
            seen.runs += 1
    result = list(merged.values())
    for bar in result:
        bar.detail = f"{bar.runs} runs" if bar.runs > 1 else "1 run"
    return result


def timeline_figure(
    runs: Sequence[StepRunLike],
    events: Sequence[EventLike] = (),
    *,
    now: datetime | None = None,
    max_bars: int = MAX_BARS,
    title: str | None = None,
) -> go.Figure:
    """Bars from start to end of each step run, coloured by outcome, with
    approvals and rollbacks marked."""
    now = now or utcnow()
    bars = aggregate(_bars(runs, now), max_bars)
    rows = [_row(r.step_index, r.step_name) for r in sorted(runs, key=lambda r: r.step_index)]
    order = list(dict.fromkeys(rows))
    marked = [e for e in events if e.event_type in MARKERS][-MAX_MARKERS:]
    if any(e.event_type == "workflow.rolled_back" or e.step_name is None for e in marked):
        order.insert(0, WORKFLOW_ROW)
    by_name = {row.split(". ", 1)[1]: row for row in order if ". " in row}

    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            name="step runs",
            orientation="h",
            y=[b.row for b in bars],
            base=[b.start.isoformat() for b in bars],
            # On a date axis a bar's length is in milliseconds.
            x=[max((b.end - b.start) / timedelta(milliseconds=1), 1.0) for b in bars],
            marker={"color": [OUTCOME_COLOURS.get(b.status, OTHER_COLOUR) for b in bars]},
            customdata=[
                [
                    b.status,
                    b.detail,
                    b.start.isoformat(timespec="seconds"),
                    b.end.isoformat(timespec="seconds"),
                ]
                for b in bars
            ],
            hovertemplate="%{y}<br>%{customdata[0]} (%{customdata[1]})"
            "<br>%{customdata[2]} → %{customdata[3]}<extra></extra>",
            showlegend=False,
        )
    )
    for event_type, (label, symbol, colour) in MARKERS.items():
        these = [e for e in marked if e.event_type == event_type]
        if not these:
            continue
        figure.add_trace(
            go.Scatter(
                name=label,
                mode="markers",
                x=[e.created_at.isoformat() for e in these],
                y=[by_name.get(_text(e.step_name or ""), WORKFLOW_ROW) for e in these],
                marker={"symbol": symbol, "size": 12, "color": colour, "line": {"width": 2, "color": colour}},
                customdata=[[_text(e.actor), _text(_marker_detail(e))] for e in these],
                hovertemplate=f"{label}<br>%{{customdata[0]}}<br>%{{customdata[1]}}<extra></extra>",
            )
        )
    figure.update_layout(
        title=title,
        barmode="overlay",
        xaxis={"type": "date", "title": None},
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(order)), "title": None},
        height=max(220, 60 + 36 * len(order)),
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        legend={"orientation": "h", "y": -0.15},
    )
    return figure


def _marker_detail(event: EventLike) -> str:
    data = event.data or {}
    if event.event_type == "approval.decided":
        after = getattr(event, "after", None) or {}
        return f"outcome: {after.get('status', 'decided')}"
    if event.event_type == "approval.responded":
        level = data.get("level")
        said = f"{data.get('decision', 'answered')} via {data.get('channel') or 'an unknown channel'}"
        said += f" (level {level + 1})" if isinstance(level, int) and level > 0 else ""
        return said + (f": {data['comment']}" if data.get("comment") else "")
    if event.event_type == "checkpoint.created":
        return f"checkpoint {data.get('name', '')}"
    if event.event_type == "workflow.rolled_back":
        return f"to {data.get('checkpoint')}: {data.get('reason', '')}"
    if event.event_type == "approval.escalated":
        return "to " + ", ".join(data.get("escalated_to") or [])
    if event.event_type == "agent.step":
        calls = ", ".join(str(c.get("name")) for c in data.get("tool_calls") or []) or "no tool call"
        tokens = data.get("token_usage") or {}
        return (
            f"step {data.get('step_number')}: {calls}; "
            f"{tokens.get('input', 0)}+{tokens.get('output', 0)} tokens; "
            f"{data.get('duration', 0)} s" + (f"; error: {data['error']}" if data.get("error") else "")
        )
    return str(data.get("title") or data.get("reason") or "")


__all__ = ["timeline_figure", "aggregate", "MAX_BARS", "OUTCOME_COLOURS"]
