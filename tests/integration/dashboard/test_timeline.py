"""The timeline figure builder on its own: one bar trace with base, aggregation, markers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from components.timeline import MAX_BARS, OUTCOME_COLOURS, timeline_figure

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Run:
    step_index: int
    step_name: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    attempt: int = 1


@dataclass
class Event:
    event_type: str
    created_at: datetime
    step_name: str | None
    actor: str = "someone@example.com"
    data: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] | None = None


def test_one_bar_per_run_from_start_to_end_coloured_by_outcome() -> None:
    runs = [
        Run(0, "check", "completed", T0, T0 + timedelta(seconds=30)),
        Run(1, "approve", "waiting_approval", T0 + timedelta(seconds=30), None),
        Run(2, "deploy", "failed", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)),
    ]
    figure = timeline_figure(runs, now=T0 + timedelta(minutes=10))
    (bars,) = [t for t in figure.data if t.type == "bar"]
    assert list(bars.y) == ["1. check", "2. approve", "3. deploy"]
    assert list(bars.base) == [r.started_at.isoformat() for r in runs]
    assert list(bars.x) == [30_000, 570_000, 120_000]  # ms; the open run lasts until now
    assert list(bars.marker.color) == [
        OUTCOME_COLOURS["completed"],
        OUTCOME_COLOURS["waiting_approval"],
        OUTCOME_COLOURS["failed"],
    ]
    assert figure.layout.xaxis.type == "date"
    assert list(figure.layout.yaxis.categoryarray) == ["3. deploy", "2. approve", "1. check"]


def test_approvals_and_rollbacks_are_marked() -> None:
    runs = [Run(0, "approve", "completed", T0, T0 + timedelta(minutes=5))]
    events = [
        Event("approval.requested", T0, "approve"),
        Event("approval.decided", T0 + timedelta(minutes=5), "approve", after={"status": "approved"}),
        Event(
            "workflow.rolled_back",
            T0 + timedelta(minutes=9),
            None,
            data={"checkpoint": "before:approve", "reason": "wrong"},
        ),
        Event("step.started", T0, "approve"),  # not marked
    ]
    figure = timeline_figure(runs, events, now=T0 + timedelta(minutes=10))
    markers = {t.name: t for t in figure.data if t.type == "scatter"}
    assert set(markers) == {"approval requested", "approval decided", "rollback"}
    assert list(markers["rollback"].y) == ["(workflow)"]
    assert list(markers["approval decided"].y) == ["1. approve"]
    assert "outcome: approved" in markers["approval decided"].customdata[0][1]
    assert len([t for t in figure.data if t.type == "bar"]) == 1


def test_a_long_history_is_aggregated_into_few_bars_in_one_trace() -> None:
    runs = [
        Run(
            i % 3,
            f"step{i % 3}",
            "failed" if i % 10 == 0 else "completed",
            T0 + timedelta(seconds=i),
            T0 + timedelta(seconds=i, milliseconds=500),
            attempt=i // 3 + 1,
        )
        for i in range(12_000)
    ]
    figure = timeline_figure(runs, now=T0 + timedelta(hours=5))
    bars = [t for t in figure.data if t.type == "bar"]
    assert len(bars) == 1
    assert 0 < len(bars[0].x) <= MAX_BARS
    counts = [int(c[1].split()[0]) for c in bars[0].customdata]
    assert sum(counts) == 12_000  # every run is in exactly one bar
    assert len(bars[0].base) == len(bars[0].x)


def test_a_short_history_is_not_aggregated() -> None:
    runs = [
        Run(0, "s", "completed", T0 + timedelta(seconds=i), T0 + timedelta(seconds=i + 1))
        for i in range(MAX_BARS)
    ]
    (bars,) = [t for t in timeline_figure(runs).data if t.type == "bar"]
    assert len(bars.x) == MAX_BARS


def test_agent_steps_are_marked_with_their_tool_calls_tokens_and_duration() -> None:
    runs = [Run(0, "confirm", "completed", T0, T0 + timedelta(seconds=5))]
    events = [
        Event(
            "agent.step",
            T0 + timedelta(seconds=2),
            "confirm",
            data={
                "step_number": 1,
                "tool_calls": [{"name": "send_confirmation"}],
                "token_usage": {"input": 120, "output": 30},
                "duration": 0.4,
            },
        ),
        Event("agent.paused", T0 + timedelta(seconds=3), "confirm"),
    ]
    figure = timeline_figure(runs, events, now=T0 + timedelta(seconds=10))
    agent = next(t for t in figure.data if t.name == "agent step")
    assert list(agent.y) == ["1. confirm"]
    assert agent.customdata[0][1] == "step 1: send_confirmation; 120+30 tokens; 0.4 s"
    assert [t.name for t in figure.data].count("agent asked a person") == 1


def test_votes_and_checkpoints_are_marked_with_who_what_and_where() -> None:
    runs = [Run(0, "approve", "completed", T0, T0 + timedelta(minutes=5))]
    events = [
        Event("checkpoint.created", T0, "approve", data={"name": "before:approve"}),
        Event(
            "approval.responded",
            T0 + timedelta(minutes=1),
            "approve",
            actor="a@example.com",
            data={"decision": "approve", "channel": "email", "level": 1, "comment": ""},
        ),
        Event(
            "approval.responded",
            T0 + timedelta(minutes=2),
            "approve",
            actor="<b>b</b>@example.com",
            data={"decision": "modify", "channel": "dashboard", "level": 0, "comment": "<a href=x>y</a>"},
        ),
    ]
    markers = {t.name: t for t in timeline_figure(runs, events).data if t.type == "scatter"}
    assert [list(c) for c in markers["vote"].customdata] == [
        ["a@example.com", "approve via email (level 2)"],
        ["&lt;b&gt;b&lt;/b&gt;@example.com", "modify via dashboard: &lt;a href=x&gt;y&lt;/a&gt;"],
    ]
    assert list(markers["vote"].y) == ["1. approve", "1. approve"]
    assert [list(c) for c in markers["checkpoint"].customdata] == [
        ["someone@example.com", "checkpoint before:approve"]
    ]
