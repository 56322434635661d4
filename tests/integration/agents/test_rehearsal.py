"""With no model configured, task steps run the real agent loop with the
labelled rehearsal model, approvals included (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.approvals.engine import ApprovalEngine
from core.definitions.definition_text import load_definition_file
from core.engine import workflows as ops
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from tests.helpers.engine import events, open_approval_of, status


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """The agent that starts the workflows is a service account (core.identity.permissions)."""
    add_user(db, "agent@example.com", role="service")


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "agent_workflow.yaml"
FINANCE = "finance@example.com"


@pytest.fixture(autouse=True)
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COUNTERSIGN_MODEL_PROVIDER", "COUNTERSIGN_MODEL_ID", "COUNTERSIGN_MODEL_API_BASE"):
        monkeypatch.delenv(name, raising=False)


def run(db: Database) -> None:
    build_runner(db, lease_seconds=10).run_until_idle(max_seconds=60)


def test_the_example_agent_workflow_runs_with_the_rehearsal_model(db: Database) -> None:
    definition = load_definition_file(EXAMPLE)
    workflow_id = ops.create_workflow(
        db,
        definition,
        created_by="agent@example.com",
        input_data={"order_id": "ORD-7", "amount": 180, "note": "rush delivery"},
    ).id
    run(db)
    assert status(db, workflow_id) == "waiting_approval"
    request = open_approval_of(db, workflow_id)
    assert request.approvers == [FINANCE]
    assert request.proposed_action["args"] == {"amount": 180, "currency": "USD"}
    assert request.proposed_call is not None
    assert request.proposed_call["arguments"] == {"amount": 180, "currency": "USD"}
    assert request.proposed_call["input_schema"]["properties"]["amount"]["type"] == "number"
    task = events(db, workflow_id, "agent.started")[0]
    assert task.data["model"] == "rehearsal (no LLM)" and task.data["rehearsal"] is True
    ApprovalEngine(db).respond_to_approval(
        request.id, FINANCE, "modify", data={"arguments": {"amount": 150}}, comment="cap"
    )
    run(db)
    assert status(db, workflow_id) == "completed"
    output = ops.get_workflow(db, workflow_id).step_outputs["charge_agent"]
    assert output["rehearsal"] is True and output["model"] == "rehearsal (no LLM)"
    assert output["result"].startswith("Rehearsed: Charge the customer 180 USD")
    charge = output["tool_calls"][-1]
    assert (charge["tool"], charge["args"]["amount"], charge["result"]["amount"]) == (
        "charge_payment",
        150,
        150,
    )
    assert output["token_usage"] == {"input": 0, "output": 0}
    steps = events(db, workflow_id, "agent.step")
    assert [s.data["tool_calls"][0]["name"] for s in steps] == [
        "validate_order",
        "charge_payment",
        "final_answer",
    ]
    assert all(s.data["rehearsal"] for s in steps)
    assert steps[0].data["model_output"].startswith("[rehearsal, no LLM]")


def test_a_failing_planned_call_fails_the_step_like_a_tool_step(db: Database) -> None:
    workflow_id = ops.create_workflow(
        db,
        {
            "name": "t",
            "steps": [
                {
                    "name": "agent",
                    "type": "task",
                    "task": "Deploy.",
                    "plan": [{"tool": "deploy_release", "args": {"service": "api"}}],
                }
            ],
        },
        created_by="agent@example.com",
    ).id
    run(db)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "failed"
    assert "planned call 1 failed: Argument version is required" in (workflow.error or "")


def test_the_rehearsal_drives_a_code_agent_too(db: Database) -> None:
    workflow_id = ops.create_workflow(
        db,
        {
            "name": "t",
            "steps": [
                {
                    "name": "agent",
                    "type": "task",
                    "task": "Check.",
                    "agent": {"type": "code"},
                    "plan": [{"tool": "run_checks", "args": {"service": "api", "version": "1.0"}}],
                }
            ],
        },
        created_by="agent@example.com",
    ).id
    run(db)
    output = ops.get_workflow(db, workflow_id).step_outputs["agent"]
    assert output["result"] == "Rehearsed: Check." and output["agent"] == "code"
    assert output["tool_calls"][0]["result"]["tests"] == "passed"
