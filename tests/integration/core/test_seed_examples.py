"""Each seed example, and each of the four demo scenarios, end to end through the
runner, with approvals answered through the ApprovalEngine."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidTransition, NotAuthorized
from core.definitions.definition_text import load_definition_file
from core.demo.scenarios import load_demo
from core.engine import workflows as ops
from core.engine.checkpoints import rollback
from core.engine.tools import ToolRegistry, default_registry
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from tests.helpers.engine import event_types, open_approval_of, status, step_runs

SEED = Path(__file__).resolve().parents[3] / "examples" / "seed"


def start_seed(db: Database, name: str, input_data: dict[str, object] | None = None) -> str:
    """Start a seed example as its agent, agent@company.com (a service account)."""
    add_user(db, "agent@company.com", role="service")
    definition = load_definition_file(SEED / name)
    return ops.create_workflow(db, definition, input_data=input_data, created_by="agent@company.com").id


def run(db: Database) -> None:
    build_runner(db, lease_seconds=10).run_until_idle(max_seconds=60)


def test_basic_usage(db: Database) -> None:
    workflow_id = start_seed(db, "basic_usage.json")
    run(db)
    assert status(db, workflow_id) == "waiting_approval"
    approval = open_approval_of(db, workflow_id)
    assert (approval.title, approval.approvers) == ("Critical Operation Approval", ["admin@company.com"])
    ApprovalEngine(db).respond_to_approval(
        approval.id, "admin@company.com", "approve", comment="go ahead", channel="cli"
    )
    run(db)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "completed"
    output = workflow.step_outputs["critical_task"]
    assert output["rehearsal"] is True
    assert output["approval"]["status"] == "approved"
    assert output["approval"]["comment"] == "go ahead"
    assert workflow.context["approvals"]["critical_task"]["decided_by"] == "admin@company.com"
    assert [c.name for c in ops.checkpoints_of(db, workflow_id)] == ["before:critical_task"]


def test_order_processing(db: Database) -> None:
    workflow_id = start_seed(db, "order_processing.json", {"amount": 1200, "currency": "USD"})
    run(db)
    approval = open_approval_of(db, workflow_id)
    assert approval.approval_type == "budget"
    assert approval.context_data == {"amount": 1200.0, "currency": "USD"}
    ApprovalEngine(db).respond_to_approval(
        approval.id, "finance@company.com", "approve", {"approved_amount": 1000}
    )
    assert ApprovalEngine(db).get(approval.id).status == "modified"
    run(db)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "completed"
    assert workflow.step_outputs["payment_approval"]["approval"]["data"] == {"approved_amount": 1000.0}
    names = [c.name for c in ops.checkpoints_of(db, workflow_id)]
    assert names == ["after:validate_order", "before:payment_approval"]


def test_order_processing_without_an_amount(db: Database) -> None:
    """The seed's order definition carries no amount; the approver may answer without one."""
    workflow_id = start_seed(db, "order_processing.json")
    run(db)
    approval = open_approval_of(db, workflow_id)
    decided = ApprovalEngine(db).respond_to_approval(approval.id, "finance@company.com", "approve")
    assert decided.status == "approved"
    run(db)
    assert status(db, workflow_id) == "completed"


def test_deployment_pipeline(db: Database) -> None:
    workflow_id = start_seed(db, "deployment_pipeline.json")
    run(db)
    approval = open_approval_of(db, workflow_id)
    assert (approval.title, approval.approval_type, approval.approvers) == (
        "Production Deploy Approval",
        "form",
        ["devops@company.com"],
    )
    ApprovalEngine(db).respond_to_approval(
        approval.id, "devops@company.com", "approve", {"note": "window ok"}
    )
    run(db)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "completed"
    assert set(workflow.step_outputs) == {"pre_deployment_checks", "deployment_approval", "deploy"}
    assert [c.name for c in ops.checkpoints_of(db, workflow_id)] == [
        "after:pre_deployment_checks",
        "before:deployment_approval",
        "after:deploy",
    ]
    assert event_types(db, workflow_id).count("step.completed") == 3


# -- the four demo scenarios --------------------------------------------------------


@pytest.fixture
def demo(db: Database) -> dict[str, str]:
    """The demo loaded and run until every scenario waits for a person."""
    started = load_demo(db)
    build_runner(db, lease_seconds=10).run_until_idle(max_seconds=60)
    by_template = dict(zip(["order", "budget", "deploy", "review"], [w.id for w in started], strict=True))
    return by_template


def test_demo_order_processing(db: Database, demo: dict[str, str]) -> None:
    workflow_id = demo["order"]
    approval = open_approval_of(db, workflow_id)
    assert approval.approvers == ["finance@example.com"]
    assert approval.context_data["amount"] == 12500
    assert ops.get_workflow(db, workflow_id).step_outputs["validate_order"]["total"] == 12500
    ApprovalEngine(db).respond_to_approval(approval.id, "finance@example.com", "approve", channel="dashboard")
    run(db)
    # The confirmation agent (rehearsal model) holds its send_confirmation call.
    held = open_approval_of(db, workflow_id)
    assert held.proposed_action["tool"] == "send_confirmation"
    ApprovalEngine(db).respond_to_approval(held.id, "manager@example.com", "approve")
    run(db)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "completed"
    assert workflow.step_outputs["confirm_order"]["model"] == "rehearsal (no LLM)"
    assert workflow.step_outputs["confirm_order"]["tool_calls"][1]["result"]["sent"] is True
    charge = workflow.step_outputs["payment_approval"]
    assert charge["amount"] == 12500 and charge["currency"] == "USD"
    assert charge["charge_id"].startswith("ch_")


def test_demo_budget_climbs_manager_director_cfo(db: Database, demo: dict[str, str]) -> None:
    engine = ApprovalEngine(db)
    approval = open_approval_of(db, demo["budget"])
    assert approval.approvers == ["manager@example.com"]
    for approver, next_approvers in [
        ("manager@example.com", ["director@example.com"]),
        ("director@example.com", ["cfo@example.com"]),
    ]:
        assert engine.list_pending_approvals(approver)[0].id == approval.id
        answered = engine.respond_to_approval(approval.id, approver, "approve")
        assert (answered.status, answered.approvers) == ("pending", next_approvers)
        assert status(db, demo["budget"]) == "waiting_approval"
    assert engine.list_pending_approvals("manager@example.com") == []
    final = engine.respond_to_approval(approval.id, "cfo@example.com", "approve")
    assert final.status == "approved"
    assert final.decision_data == {"approved_amount": 75000.0}
    run(db)
    assert status(db, demo["budget"]) == "completed"
    assert [e for e in event_types(db, demo["budget"]) if e.startswith("approval.")] == [
        "approval.requested",
        "approval.responded",
        "approval.level_passed",
        "approval.responded",
        "approval.level_passed",
        "approval.responded",
        "approval.decided",
    ]


def test_demo_budget_lower_amount_drops_the_cfo(db: Database, demo: dict[str, str]) -> None:
    engine = ApprovalEngine(db)
    approval = open_approval_of(db, demo["budget"])
    after_manager = engine.respond_to_approval(
        approval.id, "manager@example.com", "approve", {"approved_amount": 30000}, comment="trim it"
    )
    assert after_manager.approvers == ["director@example.com"]
    # The director is asked about the amount the manager allowed, not the original one.
    final = engine.respond_to_approval(approval.id, "director@example.com", "approve")
    assert final.status == "modified"
    assert final.decision_data["approved_amount"] == 30000
    run(db)
    workflow = ops.get_workflow(db, demo["budget"])
    assert workflow.status == "completed"
    assert workflow.context["approvals"]["budget_request"]["status"] == "modified"


def test_demo_budget_lower_amount_below_director_ends_at_the_manager(
    db: Database, demo: dict[str, str]
) -> None:
    engine = ApprovalEngine(db)
    approval = open_approval_of(db, demo["budget"])
    final = engine.respond_to_approval(
        approval.id, "manager@example.com", "approve", {"approved_amount": 8000}
    )
    assert final.status == "modified" and final.level == 0
    assert final.decision_data == {"approved_amount": 8000.0}


def test_demo_budget_director_cannot_raise_what_the_manager_cut(db: Database, demo: dict[str, str]) -> None:
    engine = ApprovalEngine(db)
    approval = open_approval_of(db, demo["budget"])
    engine.respond_to_approval(approval.id, "manager@example.com", "approve", {"approved_amount": 30000})
    final = engine.respond_to_approval(
        approval.id, "director@example.com", "approve", {"approved_amount": 20000}
    )
    assert final.status == "modified"
    assert final.decision_data["approved_amount"] == 20000


def test_demo_deployment_rolled_back_after_deploy(db: Database, demo: dict[str, str]) -> None:
    workflow_id = demo["deploy"]
    engine = ApprovalEngine(db)
    approval = open_approval_of(db, workflow_id)
    assert approval.response_schema["required"] == ["change_ticket", "window"]
    ok = {"change_ticket": "CHG-1234", "window": "tonight"}
    engine.respond_to_approval(approval.id, "devops@example.com", "approve", ok)
    run(db)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "completed"
    deployment = workflow.step_outputs["deploy"]["deployment"]

    # Rolling back is an admin's: devops, an approver, is refused (and nothing is undone).
    with pytest.raises(NotAuthorized, match="devops@example.com may not workflows:rollback"):
        rollback(
            db,
            default_registry,
            workflow_id,
            checkpoint_name="before:deployment_approval",
            reason="error rate up after deploy",
            actor="devops@example.com",
        )
    result = rollback(
        db,
        default_registry,
        workflow_id,
        checkpoint_name="before:deployment_approval",
        reason="error rate up after deploy",
        actor="admin@example.com",
    )
    assert [(c["step"], c["tool"]) for c in result.compensations] == [
        ("smoke_tests", None),
        ("deploy", "rollback_release"),
        ("deployment_approval", None),
    ]
    deploy_comp = next(c for c in result.compensations if c["step"] == "deploy")
    assert deploy_comp["result"] == {"rolled_back": deployment}
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "paused"
    assert list(workflow.step_outputs) == ["pre_deployment_checks"]
    assert [r.status for r in step_runs(db, workflow_id)] == [
        "completed",
        "rolled_back",
        "compensated",
        "rolled_back",
    ]
    # Resumed, it asks again from the approval.
    ops.resume_workflow(db, workflow_id, "devops@example.com")
    run(db)
    assert status(db, workflow_id) == "waiting_approval"
    assert open_approval_of(db, workflow_id).id != approval.id


def test_demo_document_review_two_of_three(db: Database, demo: dict[str, str]) -> None:
    workflow_id = demo["review"]
    engine = ApprovalEngine(db)
    approval = open_approval_of(db, workflow_id)
    assert approval.threshold == 2 and len(approval.approvers) == 3
    # A reject does not decide here: two approvals still can.
    after_reject = engine.respond_to_approval(approval.id, "legal@example.com", "reject", comment="wording")
    assert after_reject.status == "pending"
    one = engine.respond_to_approval(approval.id, "compliance@example.com", "approve", {"verdict": "publish"})
    assert one.status == "pending"
    two = engine.respond_to_approval(
        approval.id, "editor@example.com", "approve", {"verdict": "publish_with_edits", "notes": "fix typo"}
    )
    assert two.status == "approved"
    assert len(engine.responses(approval.id)) == 3
    run(db)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "completed"
    assert workflow.step_outputs["publish"]["published"] == "pricing-page-v7"


def test_demo_document_review_rejected_once_unreachable(db: Database, demo: dict[str, str]) -> None:
    engine = ApprovalEngine(db)
    approval = open_approval_of(db, demo["review"])
    engine.respond_to_approval(approval.id, "legal@example.com", "reject")
    decided = engine.respond_to_approval(approval.id, "compliance@example.com", "reject")
    assert decided.status == "rejected"
    run(db)
    assert status(db, demo["review"]) == "failed"
    with pytest.raises(InvalidTransition):
        ops.resume_workflow(db, demo["review"], "admin@example.com")


def test_demo_users_and_groups(db: Database) -> None:
    load_demo(db)
    add_user(db, "another@example.com", groups=["reviewers"])
    engine = ApprovalEngine(db)
    assert len(engine.list_pending_approvals()) == 0  # nothing asked before the runner ran
    build_runner(db, registry=default_registry, lease_seconds=10).run_until_idle(max_seconds=60)
    assert {a.title for a in engine.list_pending_approvals()} == {
        "High-value payment",
        "Marketing campaign budget",
        "Production deploy approval",
        "Review the pricing page update",
    }
    assert isinstance(default_registry, ToolRegistry)


def test_demo_team_runs_through_its_gate(db: Database, demo: dict[str, str]) -> None:
    from core.agents.teams import start_team

    workflow = start_team(db, "research_brief", "Why do tides happen?", "manager@example.com")
    run(db)
    gate = open_approval_of(db, workflow.id)
    assert gate.step_name == "approve_writer"
    ApprovalEngine(db).respond_to_approval(gate.id, "admin@example.com", "approve")
    run(db)
    assert status(db, workflow.id) == "completed"
    assert [r.step_name for r in step_runs(db, workflow.id)] == ["researcher", "approve_writer", "writer"]


def test_demo_tenant_user_talks_to_the_support_flow(db: Database, demo: dict[str, str]) -> None:
    from core.conversations import sessions as conversations

    chat = conversations.start_session(db, "amy@acme.example", "support")
    conversations.post_user_message(db, chat.id, "amy@acme.example", "Where is my order?")
    history = conversations.full_history(db, chat.id, "amy@acme.example")
    assert chat.tenant == "acme"
    assert [m.role for m in history] == ["user", "assistant"]
    # The tenant's user sees none of the platform's demo workflows.
    assert ops.list_workflows(db, tenant="acme").total == 0
    assert ops.list_workflows(db).total >= 4
