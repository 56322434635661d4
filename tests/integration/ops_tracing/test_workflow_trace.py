"""One trace per workflow: root, steps, agent runs, the approval wait and a delivery.

The example agent workflow runs a tool step, then a task step whose agent
asks finance before it charges (the request is emailed through a real SMTP
server on loopback), and continues after the answer, in a second runner.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.approvals.engine import ApprovalEngine
from core.definitions.definition_text import load_definition_file
from core.engine import workflows as ops
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.telemetry import tracing
from tests.integration.channels.conftest import Mailbox, dispatcher


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """Who acts in these tests has an account (core.identity.permissions)."""
    add_user(db, "agent@example.com", role="service")


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "agent_workflow.yaml"


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_all_spans_of_a_workflow_share_its_stored_trace(
    db: Database,
    spans: InMemorySpanExporter,
    smtp: Mailbox,
) -> None:
    smtp.start()
    workflow = ops.create_workflow(
        db,
        load_definition_file(EXAMPLE),
        input_data={"order_id": "ORD-7", "amount": 180, "note": "rush"},
        created_by="agent@example.com",
    )
    stored = ops.get_workflow(db, workflow.id).trace_context
    assert stored["traceparent"].startswith("00-")
    build_runner(db, runner_id="first", dispatch_notifications=False).run_until_idle()
    assert dispatcher(db).dispatch_until_idle() == 1
    assert len(smtp.received()) == 1
    engine = ApprovalEngine(db)
    [approval] = engine.list_pending_approvals(workflow_id=workflow.id)
    engine.respond_to_approval(approval.id, "finance@example.com", "approve", channel="cli")
    build_runner(db, runner_id="second", dispatch_notifications=False).run_until_idle()
    assert ops.get_workflow(db, workflow.id).status == "completed"

    finished = list(spans.get_finished_spans())
    [root] = named(finished, "workflow Custom order with an agent")
    trace_id = root.context.trace_id
    assert stored["traceparent"].startswith(f"00-{trace_id:032x}-{root.context.span_id:016x}-")
    assert {s.context.trace_id for s in finished} == {trace_id}
    # Steps hang off the stored root, whichever runner ran them.
    steps = named(finished, "step check_order") + named(finished, "step charge_agent")
    assert len(steps) == 3  # the task step ran twice: before and after the decision
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in steps)
    # Each agent run is inside its step's span.
    runs = named(finished, "countersign.agent.run")
    task_steps = {s.context.span_id for s in named(finished, "step charge_agent")}
    assert len(runs) == 2 and {r.parent.span_id for r in runs if r.parent} == task_steps
    # The wait is recorded when the decision commits, from the request's creation.
    [wait] = named(finished, "approval wait")
    assert wait.parent is not None and wait.parent.span_id == root.context.span_id
    assert wait.attributes is not None and wait.attributes["approval_id"] == approval.id
    assert wait.attributes["approval.outcome"] == "approved"
    assert wait.start_time == int(approval.created_at.timestamp() * 1_000_000_000)
    assert wait.end_time is not None and wait.start_time < wait.end_time
    [delivery] = named(finished, "delivery email")
    assert delivery.parent is not None and delivery.parent.span_id == root.context.span_id
    assert delivery.attributes is not None and delivery.attributes["countersign.outcome"] == "sent"


def test_tracing_off_stores_nothing_and_a_runner_with_tracing_gives_the_root_later(
    db: Database,
    spans: InMemorySpanExporter,
) -> None:
    tracing.use_exporter(None)
    workflow = ops.create_workflow(
        db,
        {
            "name": "checks",
            "steps": [
                {
                    "name": "checks",
                    "type": "tool",
                    "tool": "run_checks",
                    "args": {"service": "api", "version": "1"},
                }
            ],
        },
    )
    assert ops.get_workflow(db, workflow.id).trace_context == {}
    tracing.use_exporter(spans)
    build_runner(db, dispatch_notifications=False).run_until_idle()
    finished = list(spans.get_finished_spans())
    assert [s.name for s in finished] == ["workflow checks", "step checks"]
    assert finished[0].context.trace_id == finished[1].context.trace_id
    stored = ops.get_workflow(db, workflow.id).trace_context
    assert stored["traceparent"].split("-")[1] == f"{finished[0].context.trace_id:032x}"
