"""The agent handler writes execution log rows: steps, tool calls, held calls,
model errors and the final answer, with the workflow's tenant, on SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import update

from core.agents import execution_logs
from core.agents.execution_logs import LogFilters
from core.approvals.engine import ApprovalEngine
from core.engine.tools import ToolRegistry
from core.store.db import Database
from core.store.tables import Workflow
from tests.helpers.engine import Calls, open_approval_of, run, start, status
from tests.integration.agents.conftest import BOSS
from tests.integration.execution_logs.flaky import flaky


def _rows(db: Database, workflow_id: str) -> list[execution_logs.LogRow]:
    return execution_logs.export_rows(db, LogFilters(workflow_id=workflow_id), None)


def test_a_run_with_a_tool_call_and_a_model_error_leaves_its_rows(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    boom = f"model server fell over {uuid.uuid4().hex[:6]}"
    workflow_id = start(
        db,
        [
            {
                "name": "lookup_order",
                "type": "task",
                "task": "Look order A-7 up.",
                "retry": {"attempts": 2, "backoff": 0.05},
                "agent": flaky(
                    [
                        {"call": "lookup", "args": {"order": "A-7"}},
                        {"raise": boom, "then": {"final": "A-7 costs 120.0"}},
                    ],
                    tools=["lookup"],
                ),
            }
        ],
    )
    with db.session() as session:  # the workflow belongs to a tenant; its rows do too
        session.execute(update(Workflow).where(Workflow.id == workflow_id).values(tenant="acme"))
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("lookup") == [{"order": "A-7"}, {"order": "A-7"}]

    rows = _rows(db, workflow_id)
    assert [(r.kind, r.level) for r in rows] == [
        # attempt 1: a step with the tool call, then the model raises
        ("agent_step", "info"),
        ("tool_call", "info"),
        ("agent_step", "info"),
        ("model_error", "error"),
        # attempt 2: the same call, then the answer
        ("agent_step", "info"),
        ("tool_call", "info"),
        ("agent_step", "info"),
        ("final_answer", "info"),
    ]
    assert {(r.tenant, r.workflow_id, r.step_name, r.agent, r.session_id) for r in rows} == {
        ("acme", workflow_id, "lookup_order", "tool_calling", None)
    }
    step, call, _, error = rows[:4]
    assert step.message == "Step 1: called lookup" and step.duration_ms is not None
    assert step.data["token_usage"] == {"input": 10, "output": 5}
    assert (call.tool_name, call.data) == (
        "lookup",
        {"arguments": {"order": "A-7"}, "result": {"order": "A-7", "total": 120.0}},
    )
    assert call.message == 'lookup({"order": "A-7"}) -> {"order": "A-7", "total": 120.0}'
    assert error.message == f"RuntimeError: {boom}"
    assert error.data == {"error_type": "AgentGenerationError"}
    assert rows[-1].message == "A-7 costs 120.0" and rows[-1].data == {"steps": 2}
    # Tenants see only their own rows; the platform (None) sees them all.
    assert execution_logs.query(db, LogFilters(), "acme").total == 8
    assert execution_logs.query(db, LogFilters(), "globex").total == 0


def test_a_held_call_and_its_approved_run_are_logged(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id = start(
        db,
        [
            {
                "name": "charge_order",
                "type": "task",
                "task": "Charge 120.",
                "agent": flaky(
                    [{"call": "charge", "args": {"amount": 120.0}}, {"final": "charged"}],
                    held_tools=["charge"],
                    approval={"requested_from": BOSS},
                ),
            }
        ],
    )
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    held = [r for r in _rows(db, workflow_id) if r.kind == "tool_call"]
    assert [(r.tool_name, r.message, r.data["held"]) for r in held] == [
        ("charge", 'charge({"amount": 120.0}) held for approval', True)
    ]
    ApprovalEngine(db).respond_to_approval(open_approval_of(db, workflow_id).id, BOSS, "approve")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    calls_logged = [r for r in _rows(db, workflow_id) if r.kind == "tool_call"]
    assert [r.message.split(" -> ")[0] for r in calls_logged] == [
        'charge({"amount": 120.0}) held for approval',
        'charge({"amount": 120.0})',
    ]
    assert calls_logged[1].data["result"] == {"charged": 120.0, "currency": "USD"}
    assert [r.kind for r in _rows(db, workflow_id)][-1] == "final_answer"
