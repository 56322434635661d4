"""What runs is exactly what was approved: the released call, through the engine.

Each test asserts what the recording tool *received* after a decision, on
SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from core.approvals.engine import ApprovalEngine
from core.approvals.presentation import request_view
from core.base.errors import DefinitionError, InvalidResponse
from core.definitions.calls import call_digest
from core.definitions.workflow import parse_definition
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest
from tests.helpers.approved_calls import FINANCE, pay_step, waiting
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.engine import (
    REQUESTER,
    Calls,
    event_types,
    events,
    open_approval_of,
    run,
    start,
    status,
)


@pytest.fixture
def pay_registry(calls: Calls) -> ToolRegistry:
    return _pay_registry(calls)


def answer(
    db: Database,
    approval_id: str,
    decision: str = "approve",
    data: dict[str, Any] | None = None,
    who: str = FINANCE,
) -> ApprovalRequest:
    return ApprovalEngine(db).respond_to_approval(approval_id, who, decision, data)


def test_the_request_stores_the_rendered_call(db: Database, pay_registry: ToolRegistry) -> None:
    _, approval = waiting(db, pay_registry)
    call = approval.proposed_call
    assert call is not None
    assert call["tool"] == "pay"
    assert call["arguments"] == {"amount": 12500, "currency": "USD", "note": "invoice 7"}
    assert call["digest"] == call_digest("pay", call["arguments"])
    assert call["input_schema"]["properties"]["amount"]["type"] == "number"
    assert "idempotency_key" not in call["input_schema"]["properties"]


def test_approve_runs_the_proposed_call(db: Database, pay_registry: ToolRegistry, calls: Calls) -> None:
    workflow_id, approval = waiting(db, pay_registry)
    answer(db, approval.id)
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [{"amount": 12500, "currency": "USD", "note": "invoice 7"}]


def test_budget_approved_lower_charges_the_lower_amount(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, pay_registry, "budget")
    assert approval.context_data["amount"] == 12500
    decided = answer(db, approval.id, data={"approved_amount": 9000})
    assert decided.status == "modified"
    assert decided.released_call is not None
    assert decided.released_call["arguments"]["amount"] == 9000
    run(db, pay_registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [{"amount": 9000, "currency": "USD", "note": "invoice 7"}]
    [decided_event] = events(db, workflow_id, "approval.decided")
    assert decided_event.data["diff"] == [{"argument": "amount", "before": 12500, "after": 9000}]
    assert decided_event.data["proposed_call"]["arguments"]["amount"] == 12500


def test_binary_approval_of_a_call_takes_edited_arguments(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, pay_registry)
    decided = answer(db, approval.id, "modify", {"arguments": {"note": "invoice 7, net 30"}})
    assert decided.status == "modified"
    run(db, pay_registry)
    assert calls.of("pay") == [{"amount": 12500, "currency": "USD", "note": "invoice 7, net 30"}]
    context = ops.get_workflow(db, workflow_id).context["approvals"]["pay"]
    assert context["call"]["arguments"]["note"] == "invoice 7, net 30"
    [vote] = context["votes"]
    assert (vote["approver"], vote["decision"]) == (FINANCE, "modify")


def test_approve_with_arguments_counts_as_a_change(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    _, approval = waiting(db, pay_registry)
    assert answer(db, approval.id, "approve", {"arguments": {"amount": 100}}).status == "modified"
    run(db, pay_registry)
    assert calls.of("pay") == [{"amount": 100, "currency": "USD", "note": "invoice 7"}]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"arguments": {"amount": "a lot"}}, "arguments.amount"),
        ({"arguments": {"iban": "DE00"}}, "arguments.iban"),
        ({"arguments": {"currency": None}}, "arguments.currency"),
        ({"tool": "refund", "arguments": {"amount": 1}}, "tool: an edit cannot name another tool"),
        ({"arguments": ["amount", 1]}, "arguments: must be a mapping"),
    ],
)
def test_a_bad_edit_is_refused_and_nothing_runs(
    db: Database, pay_registry: ToolRegistry, calls: Calls, edit: dict[str, Any], named: str
) -> None:
    workflow_id, approval = waiting(db, pay_registry)
    with pytest.raises(InvalidResponse, match=named.replace(".", r"\.")):
        answer(db, approval.id, "modify", edit)
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    assert ApprovalEngine(db).responses(approval.id) == []
    run(db, pay_registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("pay") == [] and calls.of("refund") == []


def test_a_budget_cannot_be_raised_by_an_edit(db: Database, pay_registry: ToolRegistry, calls: Calls) -> None:
    _, approval = waiting(db, pay_registry, "budget")
    with pytest.raises(InvalidResponse, match=r"arguments\.amount: 13000 is more than the 12500"):
        answer(db, approval.id, "modify", {"arguments": {"amount": 13000}})
    with pytest.raises(InvalidResponse, match="approved_amount"):
        answer(db, approval.id, "approve", {"approved_amount": 13000})
    # An edit of the amount argument alone is the approved amount.
    assert answer(db, approval.id, "modify", {"arguments": {"amount": 8000}}).status == "modified"
    assert ApprovalEngine(db).get(approval.id).decision_data == {
        "arguments": {"amount": 8000},
        "approved_amount": 8000,
    }


def test_tampering_with_the_released_call_stops_it(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, pay_registry, "budget")
    answer(db, approval.id, data={"approved_amount": 9000})
    with db.session() as session:
        row = session.get(ApprovalRequest, approval.id)
        assert row is not None and row.released_call is not None
        forged = {**row.released_call, "arguments": {**row.released_call["arguments"], "amount": 90000}}
        session.execute(
            update(ApprovalRequest).where(ApprovalRequest.id == approval.id).values(released_call=forged)
        )
    run(db, pay_registry)
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []
    [refused] = events(db, workflow_id, "call.refused")
    assert "does not match the digest" in refused.data["reason"]
    assert "step.retry_scheduled" not in event_types(db, workflow_id)


def test_tampering_that_also_rewrites_the_digest_is_caught_by_the_audit_trail(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id, approval = waiting(db, pay_registry)
    answer(db, approval.id)
    arguments = {"amount": 1, "currency": "USD", "note": "to the attacker"}
    forged = {"tool": "pay", "arguments": arguments, "digest": call_digest("pay", arguments)}
    with db.session() as session:
        session.execute(
            update(ApprovalRequest).where(ApprovalRequest.id == approval.id).values(released_call=forged)
        )
    run(db, pay_registry)
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []
    [refused] = events(db, workflow_id, "call.refused")
    assert "audit trail" in refused.data["reason"]


def test_rejection_releases_nothing(db: Database, pay_registry: ToolRegistry, calls: Calls) -> None:
    workflow_id, approval = waiting(db, pay_registry)
    assert answer(db, approval.id, "reject").released_call is None
    run(db, pay_registry)
    assert status(db, workflow_id) == "failed"
    assert calls.of("pay") == []


def test_later_levels_are_asked_about_what_earlier_ones_released(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    levels = [
        {"name": "manager", "min_amount": 0, "approvers": ["manager@example.com"]},
        {"name": "director", "min_amount": 10000, "approvers": ["director@example.com"]},
        {"name": "cfo", "min_amount": 50000, "approvers": ["cfo@example.com"]},
    ]
    workflow_id = start(
        db,
        [{**pay_step("budget", levels=levels), "approval_config": {"type": "budget", "levels": levels}}],
        input_data={"amount": 75000, "note": "campaign"},
    )
    run(db, pay_registry)
    approval = open_approval_of(db, workflow_id)
    view = request_view(approval, [])
    assert view.chain == "level 1 of 3: manager waiting, director next, cfo then"
    answer(db, approval.id, "approve", {"approved_amount": 40000}, who="manager@example.com")
    approval = ApprovalEngine(db).get(approval.id)
    view = request_view(approval, ApprovalEngine(db).responses(approval.id))
    assert view.chain == (
        "level 2 of 2: manager (manager@example.com approved with changes), director waiting"
    )
    assert view.amount_text == "40,000.00 USD (forty thousand US dollars)"
    assert view.amount_note == "lowered from 75,000.00 USD by manager@example.com"
    assert [(r.name, r.proposed, r.now) for r in view.arguments if r.changed] == [("amount", 75000, 40000)]
    assert view.changes == [{"argument": "amount", "before": 75000, "after": 40000}]
    answer(
        db, approval.id, "modify", {"arguments": {"note": "campaign, phase 1"}}, who="director@example.com"
    )
    run(db, pay_registry)
    assert calls.of("pay") == [{"amount": 40000, "currency": "USD", "note": "campaign, phase 1"}]


def test_two_form_answers_are_never_merged(db: Database, registry: ToolRegistry) -> None:
    fields = [
        {"name": "verdict", "type": "string", "enum": ["publish", "publish_with_edits"], "required": True},
        {"name": "notes", "type": "string"},
    ]
    workflow_id = start(
        db,
        [
            {
                "name": "review",
                "type": "approval",
                "approval_config": {
                    "type": "form",
                    "requested_from": ["legal@example.com", "compliance@example.com"],
                    "approval_threshold": 2,
                    "form_fields": fields,
                },
            }
        ],
    )
    run(db, registry)
    approval = open_approval_of(db, workflow_id)
    legal = {"verdict": "publish", "notes": "Fine legally"}
    compliance = {"verdict": "publish_with_edits"}
    answer(db, approval.id, "approve", legal, who="legal@example.com")
    decided = answer(db, approval.id, "approve", compliance, who="compliance@example.com")
    assert decided.decision_data == compliance  # the deciding vote's answer, exactly
    run(db, registry)
    seen = ops.get_workflow(db, workflow_id).context["approvals"]["review"]
    assert seen["data"] == compliance
    assert [(v["approver"], v["data"]) for v in seen["votes"]] == [
        ("legal@example.com", legal),
        ("compliance@example.com", compliance),
    ]


def test_a_budget_of_a_call_without_its_amount_argument_is_refused_at_load() -> None:
    step = pay_step("budget")
    step["args"] = {"total": 5, "currency": "USD"}
    with pytest.raises(DefinitionError, match=r"steps\[0\]\.args\.amount: a budget approval"):
        parse_definition({"steps": [step]})
    step["approval_config"]["amount_argument"] = "total"
    parse_definition({"steps": [step]})


def test_a_threshold_no_one_can_reach_is_refused_at_load() -> None:
    step = pay_step(approval_threshold=2)
    with pytest.raises(DefinitionError, match=r"approval_threshold: 2 approvals are needed"):
        parse_definition({"steps": [step]})


def test_a_workflow_only_its_starter_could_approve_is_refused_at_start(db: Database) -> None:
    with pytest.raises(DefinitionError, match="the only approver is requester@example.com"):
        start(db, [pay_step(requested_from=REQUESTER)])
    start(db, [pay_step(requested_from=REQUESTER, allow_self_approval=True)])


def test_a_call_that_cannot_be_rendered_fails_before_anyone_is_asked(
    db: Database, pay_registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id = start(db, [pay_step()], input_data={"note": "no amount"})
    run(db, pay_registry)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "failed"
    assert "${input.amount} has no value" in (workflow.error or "")
    assert ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id) == []


def test_a_definition_naming_an_unregistered_tool_is_refused_at_start(
    db: Database, pay_registry: ToolRegistry
) -> None:
    add_user(db, REQUESTER, role="service")
    step = {**pay_step(), "compensate": "undo_pay"}
    with pytest.raises(
        DefinitionError,
        match=r"steps\[0\]\.compensate\.tool: no tool is "
        r"registered as 'undo_pay'",
    ):
        ops.create_workflow(
            db,
            {"steps": [step]},
            input_data={"amount": 1, "note": "x"},
            created_by=REQUESTER,
            tools=pay_registry,
        )
    assert ops.list_workflows(db).total == 0
    step["compensate"] = "refund"
    ops.create_workflow(
        db, {"steps": [step]}, input_data={"amount": 1, "note": "x"}, created_by=REQUESTER, tools=pay_registry
    )


@pytest.mark.parametrize(("amount", "asked"), [(500, False), (5000, True)])
def test_a_conditional_gate_asks_only_when_its_expression_is_true(
    db: Database, pay_registry: ToolRegistry, calls: Calls, amount: int, asked: bool
) -> None:
    add_user(db, REQUESTER, role="service")
    step = {**pay_step(), "requires_approval": {"when": "args.amount > 1000 or input.note == 'x'"}}
    workflow_id = ops.create_workflow(
        db, {"steps": [step]}, input_data={"amount": amount, "note": "invoice 7"}, created_by=REQUESTER
    ).id
    run(db, pay_registry)
    pending = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    if asked:
        assert status(db, workflow_id) == "waiting_approval" and len(pending) == 1
        assert calls.of("pay") == []
        assert events(db, workflow_id, "approval.not_required") == []
    else:
        assert status(db, workflow_id) == "completed" and pending == []
        assert calls.of("pay") == [{"amount": amount, "currency": "USD", "note": "invoice 7"}]
        [skipped] = events(db, workflow_id, "approval.not_required")
        assert skipped.data["reason"] == ("not required: args.amount > 1000 or input.note == 'x' was false")


def test_a_gate_that_cannot_be_evaluated_asks(db: Database, pay_registry: ToolRegistry, calls: Calls) -> None:
    add_user(db, REQUESTER, role="service")
    step = {**pay_step(), "requires_approval": {"when": "args.amount > input.limit"}}
    workflow_id = ops.create_workflow(
        db, {"steps": [step]}, input_data={"amount": 1, "note": "n"}, created_by=REQUESTER
    ).id
    run(db, pay_registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("pay") == []
