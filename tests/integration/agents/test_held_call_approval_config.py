"""An agent's held-call ``approval`` settings take effect key by key, as a workflow's
``approval_config`` does, or the definition (or profile) is refused when it loads, naming
the key; none is accepted and then left out (SQLite and PostgreSQL, tool-calling and code
agents). Every test checks what the tool RECEIVED.

The tester's finding: ``approval: {type: budget, levels: [...]}`` was accepted, then the
request was a yes/no one asked of the admins, one answer released 5,000 (no CFO asked),
and an approver's lower ``approved_amount`` was recorded while the tool received the
amount the agent asked for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from core.agents import profiles
from core.approvals.engine import ApprovalEngine
from core.base.errors import DefinitionError, InvalidAgentProfile
from core.definitions.agents import register_profile
from core.definitions.workflow import parse_definition
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.store.db import Database
from core.store.tables import ApprovalBackup, ApprovalReminder, ApprovalRequest, utcnow
from tests.helpers.engine import Calls, account_exists, accounts, events, open_approval_of, run, status
from tests.helpers.engine import start as start_workflow
from tests.integration.agents.scripted import scripted

FIN = "fin@example.com"
CFO = "cfo@example.com"
DEPUTY = "deputy@example.com"
ADMIN = "admin@example.com"
LEVELS = [
    {"min_amount": 0, "approvers": [FIN], "threshold": 1},
    {"min_amount": 1000, "approvers": [CFO], "threshold": 1},
]
BUDGET_LEVELS = {"type": "budget", "amount_argument": "amount", "levels": LEVELS}
KINDS = ["tool_calling", "code"]


def people(db: Database) -> None:
    """Who answers in these tests has an account (core.identity.permissions)."""
    if not account_exists(db, FIN):
        accounts(db, "approver", FIN, CFO, DEPUTY)
        accounts(db, "admin", ADMIN)


def charging(kind: str, amount: float, approval: dict[str, Any], **agent: Any) -> dict[str, Any]:
    """A task step whose agent calls the held ``charge`` once with ``amount``, then answers."""
    if kind == "code":
        script: list[dict[str, Any]] = [
            {"code": f'r = charge(amount={amount!r}, currency="USD")\nprint(r)'},
            {"code": 'final_answer("done")'},
        ]
    else:
        script = [{"call": "charge", "args": {"amount": amount, "currency": "USD"}}, {"final": "done"}]
    settings = {"held_tools": ["charge"], "approval": approval, **agent}
    return {
        "name": "agent",
        "type": "task",
        "task": "Charge the order.",
        "agent": scripted(script, type=kind, **settings),
    }


def start(db: Database, step: dict[str, Any], **input_data: Any) -> str:
    people(db)
    return start_workflow(db, [step], input_data=input_data or None)


def answer(
    db: Database, approval_id: str, who: str, decision: str, data: dict[str, Any] | None = None
) -> Any:
    return ApprovalEngine(db).respond_to_approval(approval_id, who, decision, data or {})


def received(calls: Calls) -> list[Any]:
    """The amounts the charge tool received, in order."""
    return [c["amount"] for c in calls.of("charge")]


def past_deadline(db: Database, approval_id: str) -> None:
    with db.session() as session:
        session.get_one(ApprovalRequest, approval_id).expires_at = utcnow() - timedelta(seconds=1)


# -- budget and levels --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_budget_levels_route_the_held_call_by_its_amount_and_each_level_must_approve(
    db: Database, registry: ToolRegistry, calls: Calls, kind: str
) -> None:
    workflow_id = start(db, charging(kind, 5000, BUDGET_LEVELS))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    # The approver sees the call, as a budget, routed by its amount to the first level.
    assert (request.approval_type, request.approvers) == ("budget", [FIN])
    assert request.proposed_call is not None
    assert (request.proposed_call["tool"], request.proposed_call["arguments"]["amount"]) == ("charge", 5000)
    assert request.context_data["amount"] == 5000

    after_fin = answer(db, request.id, FIN, "approve")
    assert (after_fin.status, after_fin.approvers) == ("pending", [CFO])  # 5,000 >= 1,000: the CFO too
    run(db, registry)
    assert received(calls) == []  # one answer releases nothing
    assert status(db, workflow_id) == "waiting_approval"

    after_cfo = answer(db, request.id, CFO, "modify", {"approved_amount": 2500})
    assert after_cfo.status == "modified"
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert received(calls) == [2500]  # the amount the CFO allowed, not the 5,000 asked
    output = ops.get_workflow(db, workflow_id).step_outputs["agent"]
    assert output["decisions"][0]["arguments"]["amount"] == 2500


@pytest.mark.parametrize("kind", KINDS)
def test_a_call_below_the_higher_level_is_decided_by_the_first_level(
    db: Database, registry: ToolRegistry, calls: Calls, kind: str
) -> None:
    workflow_id = start(db, charging(kind, 500, BUDGET_LEVELS))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert request.approvers == [FIN]
    assert answer(db, request.id, FIN, "approve").status == "approved"
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert received(calls) == [500]


@pytest.mark.parametrize("kind", KINDS)
def test_a_rejection_at_the_second_level_runs_nothing(
    db: Database, registry: ToolRegistry, calls: Calls, kind: str
) -> None:
    workflow_id = start(db, charging(kind, 5000, BUDGET_LEVELS))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    answer(db, request.id, FIN, "approve")
    assert answer(db, request.id, CFO, "reject").status == "rejected"
    run(db, registry)
    assert status(db, workflow_id) == "completed"  # the agent is told, and answers
    assert received(calls) == []


@pytest.mark.parametrize("kind", KINDS)
def test_an_approver_lowering_a_budget_is_what_the_tool_receives(
    db: Database, registry: ToolRegistry, calls: Calls, kind: str
) -> None:
    approval = {"type": "budget", "amount_argument": "amount", "requested_from": FIN}
    workflow_id = start(db, charging(kind, 500, approval))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert (request.approval_type, request.approvers) == ("budget", [FIN])
    decided = answer(db, request.id, FIN, "modify", {"approved_amount": 100})
    assert decided.status == "modified"
    assert decided.released_call is not None and decided.released_call["arguments"]["amount"] == 100
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert received(calls) == [100]


def test_a_budget_cannot_be_raised_by_its_approver(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    approval = {"type": "budget", "amount_argument": "amount", "requested_from": FIN}
    workflow_id = start(db, charging("tool_calling", 500, approval))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    with pytest.raises(Exception, match="approved_amount"):
        answer(db, request.id, FIN, "modify", {"approved_amount": 900})
    answer(db, request.id, FIN, "approve")
    run(db, registry)
    assert received(calls) == [500]


def test_a_budget_naming_an_argument_the_held_tool_does_not_take_runs_nothing_and_asks_nobody(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    approval = {"type": "budget", "amount_argument": "total", "requested_from": FIN}
    workflow_id = start(db, charging("tool_calling", 500, approval))
    run(db, registry)
    assert status(db, workflow_id) == "failed"
    assert ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id) == []
    [refused] = events(db, workflow_id, "call.refused")
    assert "amount_argument names 'total', which charge does not take" in refused.data["reason"]
    assert received(calls) == []


def test_rollback_under_a_budget_is_a_yes_no_question_of_requested_from(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    script: list[dict[str, Any]] = [
        {"call": "rollback", "args": {"reason": "wrong order"}},
        {"final": "done"},
    ]
    agent = scripted(script, held_tools=["charge"], approval={**BUDGET_LEVELS, "requested_from": DEPUTY})
    workflow_id = start(db, {"name": "agent", "type": "task", "task": "Undo.", "agent": agent})
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert (request.approval_type, request.approvers) == ("binary", [DEPUTY])
    assert request.proposed_call is not None and request.proposed_call["tool"] == "rollback"


def test_the_agents_own_question_takes_who_and_when_but_not_the_budget(
    db: Database, registry: ToolRegistry
) -> None:
    approval = {
        **BUDGET_LEVELS,
        "requested_from": DEPUTY,
        "timeout": "1h",
        "on_expiry": "approve",
        "remind": ["50%"],
    }
    script: list[dict[str, Any]] = [
        {"call": "request_approval", "args": {"title": "Go ahead?", "description": "Shall I?"}},
        {"final": "done"},
    ]
    agent = scripted(script, held_tools=["charge"], approval=approval)
    workflow_id = start(db, {"name": "agent", "type": "task", "task": "Ask.", "agent": agent})
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert (request.title, request.approval_type, request.approvers) == ("Go ahead?", "binary", [DEPUTY])
    assert (request.config["timeout"], request.config["on_expiry"], request.config["remind"]) == (
        3600,
        "approve",
        ["50%"],
    )
    assert "levels" not in request.config and request.proposed_call is None


# -- deadlines, reminders, backups, veto windows ----------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_on_expiry_approve_releases_the_held_call_when_the_deadline_passes(
    db: Database, registry: ToolRegistry, calls: Calls, kind: str
) -> None:
    approval = {"requested_from": FIN, "timeout": "1h", "on_expiry": "approve"}
    workflow_id = start(db, charging(kind, 70, approval))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert request.config["on_expiry"] == "approve"
    run(db, registry)
    assert received(calls) == []  # not before the deadline
    past_deadline(db, request.id)
    run(db, registry)  # the runner's sweep applies the deadline, then the agent goes on
    assert ApprovalEngine(db).get(request.id).status == "approved"
    assert status(db, workflow_id) == "completed"
    assert received(calls) == [70]


def test_the_deadline_fails_closed_without_on_expiry(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id = start(db, charging("tool_calling", 70, {"requested_from": FIN, "timeout": "1h"}))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    past_deadline(db, request.id)
    run(db, registry)
    assert ApprovalEngine(db).get(request.id).status == "expired"
    assert received(calls) == []


def test_reminders_are_scheduled_for_the_held_call(db: Database, registry: ToolRegistry) -> None:
    approval = {"requested_from": FIN, "timeout": "1h", "remind": ["50%", "90%"]}
    workflow_id = start(db, charging("tool_calling", 70, approval))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    with db.read() as session:
        shares = sorted(
            r.share
            for r in session.scalars(
                select(ApprovalReminder).where(ApprovalReminder.approval_id == request.id)
            )
        )
    assert shares == [50.0, 90.0]


@pytest.mark.parametrize("kind", KINDS)
def test_the_backup_is_asked_and_may_release_the_held_call(
    db: Database, registry: ToolRegistry, calls: Calls, kind: str
) -> None:
    approval = {"requested_from": FIN, "timeout": "1h", "backup": {"to": DEPUTY, "after": "50%"}}
    workflow_id = start(db, charging(kind, 70, approval))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    with db.session() as session:
        assert session.get(ApprovalBackup, request.id) is not None
        session.execute(update(ApprovalBackup).values(due_at=utcnow() - timedelta(seconds=1)))
    assert ApprovalEngine(db).expire_due() == 1
    assert open_approval_of(db, workflow_id).approvers == [FIN, DEPUTY]
    answer(db, request.id, DEPUTY, "approve")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert received(calls) == [70]


@pytest.mark.parametrize("kind", KINDS)
def test_a_veto_window_runs_the_held_call_when_it_ends_unvetoed(
    db: Database, registry: ToolRegistry, calls: Calls, kind: str
) -> None:
    workflow_id = start(db, charging(kind, 70, {"requested_from": FIN, "mode": "veto", "window": "15m"}))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert request.expires_at is not None
    run(db, registry)
    assert received(calls) == []  # not before the window ends
    past_deadline(db, request.id)
    run(db, registry)
    assert (ApprovalEngine(db).get(request.id).decided_by, status(db, workflow_id)) == (
        "system:veto-window",
        "completed",
    )
    assert received(calls) == [70]


def test_a_veto_within_the_window_runs_nothing(db: Database, registry: ToolRegistry, calls: Calls) -> None:
    workflow_id = start(db, charging("code", 70, {"requested_from": FIN, "mode": "veto", "window": "15m"}))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    answer(db, request.id, FIN, "reject")
    past_deadline(db, request.id)
    run(db, registry)
    assert received(calls) == []


# -- what the approver is shown, who is asked ----------------------------------------------


def test_show_and_context_data_reach_the_request(db: Database, registry: ToolRegistry) -> None:
    approval = {
        "type": "budget",
        "amount_argument": "amount",
        "requested_from": FIN,
        "show": ["input.order_id"],
        "context_data": {"currency": "EUR"},
    }
    script: list[dict[str, Any]] = [{"call": "charge", "args": {"amount": 40}}, {"final": "done"}]
    step = {
        "name": "agent",
        "type": "task",
        "task": "Charge.",
        "agent": scripted(script, held_tools=["charge"], approval=approval),
    }
    workflow_id = start(db, step, order_id="ORD-7")
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert request.proposed_action["show"] == [{"path": "input.order_id", "value": "ORD-7"}]
    assert (request.context_data["amount"], request.context_data["currency"]) == (40, "EUR")


def test_the_seed_spelling_required_approver_is_who_is_asked(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    workflow_id = start(db, charging("tool_calling", 70, {"required_approver": CFO}))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert request.approvers == [CFO]  # not the admins
    answer(db, request.id, CFO, "approve")
    run(db, registry)
    assert received(calls) == [70]


def test_a_stored_profiles_budget_levels_take_effect(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    script: list[dict[str, Any]] = [{"call": "charge", "args": {"amount": 5000}}, {"final": "done"}]
    model = scripted(script)["model"]
    people(db)
    profiles.create_profile(
        db,
        {
            "name": "payer",
            "model_provider": "python",
            "model_id": model["model_id"],
            "held_tools": ["charge"],
            "settings": {"model": {"options": model["options"]}, "approval": BUDGET_LEVELS},
        },
        ADMIN,
    )
    workflow_id = start(db, {"name": "agent", "type": "task", "task": "Charge.", "agent": "payer"})
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert (request.approval_type, request.approvers) == ("budget", [FIN])
    answer(db, request.id, FIN, "approve")
    run(db, registry)
    assert received(calls) == []
    answer(db, request.id, CFO, "approve")
    run(db, registry)
    assert received(calls) == [5000]


# -- refused when the definition or profile loads ----------------------------------------

REFUSED: list[tuple[dict[str, Any], list[str] | None, str]] = [
    (
        {"type": "budget", "levels": LEVELS},
        None,
        "steps[0].agent.approval: amount_argument: required with type: budget",
    ),
    ({"type": "budget", "requested_from": FIN}, None, "amount_argument: required with type: budget"),
    ({"type": "form", "requested_from": FIN}, None, "type: form is not for held calls"),
    (
        {"requested_from": FIN, "form_fields": [{"name": "why"}]},
        None,
        "form_fields: a held call's approver approves it, rejects it or changes its arguments",
    ),
    ({"requested_from": FIN, "schema": {"type": "object"}}, None, "schema: a held call's approver"),
    (
        {"requested_from": FIN, "amount_argument": "amount"},
        None,
        "amount_argument: only a budget (type: budget) sets an argument",
    ),
    (
        {"type": "budget", "amount_argument": "idempotency_key", "requested_from": FIN},
        None,
        "amount_argument: 'idempotency_key' is Countersign's own parameter",
    ),
    (
        {**BUDGET_LEVELS, "context_data": {"amount": 1}},
        None,
        "context_data.amount: with type: budget the amount is the held call's 'amount' argument",
    ),
    (
        {"requested_from": FIN, "context_data": {"tool": "refund"}},
        None,
        "context_data.tool: is the held call's own",
    ),
    (BUDGET_LEVELS, [], "type: budget applies to the calls of held_tools, and this agent holds none"),
    (
        BUDGET_LEVELS,
        ["charge", "rollback"],
        "amount_argument: held tool 'rollback' is built in and has no 'amount' argument",
    ),
    (
        {**BUDGET_LEVELS, "requested_from": FIN, "approval_threshold": 2},
        None,
        "approval_threshold: 2 approvals are needed but only 1 approver(s) are named, so the request "
        "could never be approved (for rollback's request",
    ),
    ({"requested_from": FIN, "remind": ["50%"]}, None, "remind: needs a deadline to count from"),
]


@pytest.mark.parametrize("approval, held, problem", REFUSED)
def test_a_setting_that_would_not_take_effect_is_refused_when_the_definition_loads(
    approval: dict[str, Any], held: list[str] | None, problem: str
) -> None:
    step = charging("tool_calling", 5000, approval)
    if held is not None:
        step["agent"]["held_tools"] = held
    with pytest.raises(DefinitionError) as refused:
        parse_definition({"name": "x", "steps": [step]})
    assert len(refused.value.problems) == 1, refused.value.problems
    assert problem in refused.value.problems[0]


@pytest.mark.parametrize("approval, held, problem", REFUSED[:3])
def test_it_is_refused_when_a_workflow_is_started_and_when_a_profile_is_saved_or_registered(
    db: Database, approval: dict[str, Any], held: list[str] | None, problem: str
) -> None:
    people(db)
    with pytest.raises(DefinitionError, match=problem.removeprefix("steps[0].agent.approval: ")):
        start_workflow(db, [charging("tool_calling", 5000, approval)])
    profile = {"name": "payer", "held_tools": held or ["charge"], "settings": {"approval": approval}}
    settings_problem = "settings.approval: " + problem.removeprefix("steps[0].agent.approval: ")
    with pytest.raises(InvalidAgentProfile) as refused:
        profiles.create_profile(db, profile, ADMIN)
    assert settings_problem in str(refused.value)
    assert profiles.list_profiles(db) == []
    with pytest.raises(ValueError, match=problem.removeprefix("steps[0].agent.approval: ")):
        register_profile("payer", {"held_tools": ["charge"], "approval": approval})


def test_every_accepted_key_is_one_the_requests_take() -> None:
    """Guard for the future: a key added to ApprovalConfig must be given a meaning for held
    calls here (core.definitions.agents) or refused, never passed over."""
    from core.definitions.agents import (
        APPROVAL_KEYS_BUDGET,
        APPROVAL_KEYS_EVERY_REQUEST,
        APPROVAL_KEYS_HELD_CALLS,
    )
    from core.definitions.approval import ApprovalConfig

    refused = {"form_fields", "json_schema", "ui_schema"}
    taken = {*APPROVAL_KEYS_EVERY_REQUEST, *APPROVAL_KEYS_HELD_CALLS, *APPROVAL_KEYS_BUDGET}
    assert set(ApprovalConfig.model_fields) == taken | refused
