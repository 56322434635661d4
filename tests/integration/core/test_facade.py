"""The seed's Python API (SmolAgentOrchestrator, StateManager, ApprovalEngine) on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.base.errors import DefinitionError, WorkflowNotFound
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.orchestrator import SmolAgentOrchestrator, StateManager
from core.store.db import Database
from core.store.tables import Workflow, WorkflowEvent
from tests.helpers.engine import Calls, accounts, approval, notifications, tool


def test_orchestrator_runs_until_a_person_is_needed(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    accounts(db, "service", "agent@example.com")
    orchestrator = SmolAgentOrchestrator(db, registry=registry, actor="agent@example.com")
    workflow = orchestrator.create_workflow(
        "Refund",
        "refund a customer",
        workflow_definition={"steps": [tool("look_up"), approval("ok_refund"), tool("refund")]},
        input_data={"customer": "c-1"},
    )
    assert workflow.status == "pending"  # created, not started
    report = orchestrator.execute_workflow()
    assert report["status"] == "waiting_approval"
    assert report["current_step"] == "ok_refund"
    assert report["progress"] == {"completed": 1, "total": 3}
    [pending] = report["pending_approvals"]
    assert pending["requested_by"] == "agent@example.com"
    orchestrator.approval_engine.respond_to_approval(pending["id"], "boss@example.com", "approve")
    report = orchestrator.execute_workflow()
    assert report["status"] == "completed"
    assert [c["label"] for c in calls.of("do")] == ["look_up", "refund"]
    assert report["recent_events"][-1]["after"] == {"status": "completed"}


def test_request_human_approval_inside_a_workflow(db: Database) -> None:
    accounts(db, "service", "agent@example.com")
    orchestrator = SmolAgentOrchestrator(db, actor="agent@example.com")
    workflow = orchestrator.create_workflow("w", workflow_definition={"steps": [tool("x")]})
    request = orchestrator.request_human_approval(
        "Wire $5,000?",
        "to vendor 42",
        "budget",
        "finance@example.com",
        context_data={"amount": 5000, "currency": "EUR"},
        channels=["slack"],
    )
    assert request.workflow_id == workflow.id
    assert (request.approval_type, request.requested_by) == ("budget", "agent@example.com")
    assert request.context_data == {"amount": 5000, "currency": "EUR"}
    assert notifications(db, request.id) == [("approval.requested", "slack", "finance@example.com")]
    assert [a["id"] for a in orchestrator.get_workflow_status()["pending_approvals"]] == [request.id]


def test_state_manager(db: Database, registry: ToolRegistry) -> None:
    accounts(db, "admin", "maker@example.com")  # pauses and rolls back too
    manager = StateManager(db, registry)
    workflow = manager.create_workflow("s", {"steps": [tool("x")]}, {"a": 1}, "maker@example.com")
    assert workflow.status == "pending"
    updated = manager.update_workflow_state(workflow.id, {"b": 2}, actor="maker@example.com")
    assert updated.context == {"a": 1, "b": 2}
    assert manager.transition_workflow_status(workflow.id, "running", "maker@example.com").status == "running"
    assert manager.transition_workflow_status(workflow.id, "paused", "maker@example.com").status == "paused"
    assert manager.transition_workflow_status(workflow.id, "running", "maker@example.com").status == "running"
    manager.create_checkpoint(workflow.id, "mid", actor="maker@example.com")
    result = manager.rollback_workflow(workflow.id, "mid", "test", "maker@example.com")
    assert result.checkpoint == "mid"
    assert ops.get_workflow(db, workflow.id).status == "paused"


def test_invalid_definition_writes_nothing(db: Database) -> None:
    with pytest.raises(DefinitionError, match=r"steps\[0\]\.type: must be one of"):
        SmolAgentOrchestrator(db).create_workflow(
            "bad", workflow_definition={"steps": [{"name": "a", "type": "launch"}]}
        )
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Workflow)) == 0
        assert session.scalar(select(func.count()).select_from(WorkflowEvent)) == 0


def test_orchestrator_without_a_workflow_says_so(db: Database) -> None:
    with pytest.raises(WorkflowNotFound, match="none created by this orchestrator"):
        SmolAgentOrchestrator(db).get_workflow_status()
