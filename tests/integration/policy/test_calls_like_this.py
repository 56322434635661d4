"""What "approve, and allow calls like this" releases (SQLite and PostgreSQL).

The default condition of the rule an approving answer makes releases only calls a
person would call alike: the same arguments and no others, each number between 0
and the approved one (a negative number exactly it), everything else equal. A call
outside it is asked about, and its tool receives nothing until a person decides.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.approvals import standing_rules as rules
from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest, StandingRule
from tests.helpers.approved_calls import REQUESTER
from tests.helpers.approved_calls import pay_registry as _pay_registry
from tests.helpers.engine import Calls, events, open_approval_of, run, status

ROOT = Path(__file__).resolve().parents[3]
ADMIN = "admin@example.com"
NAME = "send a payment"
APPROVED = {"amount": 100, "to": "bob@example.com"}


@pytest.fixture
def registry(calls: Calls) -> ToolRegistry:
    """``send`` takes any further keyword argument (an open tool); ``pay`` is typed, with an
    optional ``note``. Both record exactly what they received."""
    reg = _pay_registry(calls)

    @reg.register("send")
    def send(amount: float, to: str, **more: Any) -> dict[str, Any]:
        """Send money (records what it received)."""
        calls.add("send", amount=amount, to=to, **more)
        return {"sent": amount}

    return reg


@pytest.fixture
def people(db: Database) -> None:
    add_user(db, REQUESTER, role="service")
    add_user(db, ADMIN, role="admin")


def start(db: Database, registry: ToolRegistry, tool: str, arguments: dict[str, Any]) -> str:
    """A workflow of NAME whose one guarded call is ``tool(**arguments)``, run until it waits
    (or ends, when a rule released the call)."""
    step = {
        "name": tool,
        "type": "tool",
        "tool": tool,
        "args": arguments,
        "requires_approval": True,
        "approval_config": {"requested_from": ADMIN},
    }
    workflow_id = ops.create_workflow(db, {"name": NAME, "steps": [step]}, created_by=REQUESTER).id
    run(db, registry)
    return workflow_id


def approve_and_allow(db: Database, registry: ToolRegistry, workflow_id: str) -> dict[str, Any]:
    """ADMIN approves the waiting call, allowing calls like it for 7 days (the default
    condition); the rule made, after the call ran."""
    request = open_approval_of(db, workflow_id)
    ApprovalEngine(db).respond_to_approval(request.id, ADMIN, "approve", allow_for_days=7)
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    [rule] = rules.list_rules(db, ADMIN)
    assert rule["source_approval_id"] == request.id
    return rule


def asked(db: Database, workflow_id: str) -> bool:
    """The call waits for a person (ADMIN), and no rule released it."""
    if status(db, workflow_id) != "waiting_approval":
        return False
    request = open_approval_of(db, workflow_id)
    return request.approvers == [ADMIN] and request.decided_by is None


def uses(db: Database, rule_id: int) -> int:
    with db.read() as session:
        rule = session.get(StandingRule, rule_id)
        assert rule is not None
        return rule.uses


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "COUNTERSIGN_DEMO": "off"}
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_testers_repro_a_negative_amount_and_an_extra_argument_are_asked_about(
    db: Database, db_url: str, registry: ToolRegistry, calls: Calls, people: None
) -> None:
    """Approved with ``approvals respond --allow-for-days 7`` (the CLI, as reported), the rule
    does not release ``amount: -5000`` with a ``bcc`` the approver never saw."""
    first = start(db, registry, "send", APPROVED)
    request = open_approval_of(db, first)
    answered = _cli(
        db_url,
        "approvals",
        "respond",
        request.id,
        "--decision",
        "approve",
        "--allow-for-days",
        "7",
        "--as",
        ADMIN,
    )
    assert answered.returncode == 0, answered.stderr
    run(db, registry)
    assert calls.of("send") == [APPROVED]
    [rule] = rules.list_rules(db, ADMIN)

    forged = {"amount": -5000, "to": "bob@example.com", "bcc": "attacker@evil.example"}
    second = start(db, registry, "send", forged)
    assert asked(db, second)
    assert calls.of("send") == [APPROVED]  # nothing more received while nobody decided
    assert uses(db, rule["id"]) == 0
    assert events(db, second, "approval.decided") == []

    # A person decides: rejected, the tool never receives it.
    ApprovalEngine(db).respond_to_approval(open_approval_of(db, second).id, ADMIN, "reject")
    run(db, registry)
    assert status(db, second) != "completed"
    assert calls.of("send") == [APPROVED]


@pytest.mark.parametrize(
    "later",
    [
        {**APPROVED, "bcc": "attacker@evil.example"},  # an extra argument, amount within
        {"amount": -5000, "to": "bob@example.com"},  # a negative amount, nothing extra
        {"amount": 101, "to": "bob@example.com"},  # above the approved amount
        {"amount": 50, "to": "mallory@example.com"},  # another recipient
    ],
    ids=["extra-argument", "negative", "above", "other-recipient"],
)
def test_a_call_unlike_the_approved_one_is_asked_about_and_receives_nothing(
    db: Database, registry: ToolRegistry, calls: Calls, people: None, later: dict[str, Any]
) -> None:
    rule = approve_and_allow(db, registry, start(db, registry, "send", APPROVED))
    workflow_id = start(db, registry, "send", later)
    assert asked(db, workflow_id)
    assert calls.of("send") == [APPROVED]
    assert uses(db, rule["id"]) == 0
    # Once a person approves it, the tool receives exactly the call they saw.
    ApprovalEngine(db).respond_to_approval(open_approval_of(db, workflow_id).id, ADMIN, "approve")
    run(db, registry)
    assert calls.of("send") == [APPROVED, later]


def test_an_optional_parameter_the_approved_call_left_out_is_asked_about(
    db: Database, registry: ToolRegistry, calls: Calls, people: None
) -> None:
    """A typed tool's optional ``note`` was not in the approved call: a later call that sets
    it is asked about; one that leaves it out again is released."""
    approved = {"amount": 150, "currency": "USD"}
    rule = approve_and_allow(db, registry, start(db, registry, "pay", approved))
    assert calls.of("pay") == [{**approved, "note": ""}]

    noted = start(db, registry, "pay", {"amount": 150, "currency": "USD", "note": "to IBAN DE00 666"})
    assert asked(db, noted)
    assert calls.of("pay") == [{**approved, "note": ""}]

    alike = start(db, registry, "pay", {"amount": 90, "currency": "USD"})
    assert status(db, alike) == "completed"
    assert calls.of("pay") == [{**approved, "note": ""}, {"amount": 90, "currency": "USD", "note": ""}]
    assert uses(db, rule["id"]) == 1


@pytest.mark.parametrize("amount", [100, 99.5, 1, 0])
def test_a_call_like_the_approved_one_is_released_by_the_rule(
    db: Database, registry: ToolRegistry, calls: Calls, people: None, amount: float
) -> None:
    """Same arguments, a non-negative amount at most the approved one: released without
    asking, and the tool receives exactly that call."""
    rule = approve_and_allow(db, registry, start(db, registry, "send", APPROVED))
    workflow_id = start(db, registry, "send", {**APPROVED, "amount": amount})
    assert status(db, workflow_id) == "completed"
    assert calls.of("send") == [APPROVED, {**APPROVED, "amount": amount}]
    [decided] = events(db, workflow_id, "approval.decided")
    assert decided.actor == rules.rule_actor(rule["id"])
    assert uses(db, rule["id"]) == 1


def test_a_negative_approved_amount_allows_exactly_that_amount(
    db: Database, registry: ToolRegistry, calls: Calls, people: None
) -> None:
    """A negative number has no "smaller and still alike": the rule allows it exactly."""
    approved = {"amount": -20, "to": "bob@example.com"}
    rule = approve_and_allow(db, registry, start(db, registry, "send", approved))
    lower, higher = (
        start(db, registry, "send", {**approved, "amount": -21}),
        start(db, registry, "send", {**approved, "amount": 0}),
    )
    assert asked(db, lower) and asked(db, higher)
    same = start(db, registry, "send", approved)
    assert status(db, same) == "completed"
    assert calls.of("send") == [approved, approved]
    assert uses(db, rule["id"]) == 1


def test_the_offered_hint_is_the_condition_the_rule_gets(
    db: Database, registry: ToolRegistry, people: None
) -> None:
    """What the answer form shows as "like this" (allow_offer) is what an empty condition
    makes, and it reads as the approved call."""
    workflow_id = start(db, registry, "send", APPROVED)
    with db.read() as session:
        proposed = session.scalars(select(ApprovalRequest)).one().proposed_call
    hint = rules.allow_offer(db, ADMIN, None, proposed)
    rule = approve_and_allow(db, registry, workflow_id)
    assert hint == rule["condition"]
    assert rule["condition"] == "len(args) == 2 and 0 <= args.amount <= 100 and args.to == 'bob@example.com'"


def test_a_rule_stored_with_the_old_default_keeps_working_as_written(
    db: Database, registry: ToolRegistry, calls: Calls, people: None
) -> None:
    """Rules already in the database are not rewritten: their text is what they release."""
    old = rules.create_rule(
        db,
        ADMIN,
        tool="send",
        condition="args.amount <= 100 and args.to == 'bob@example.com'",
        days=7,
        workflow_name=NAME,
    )
    workflow_id = start(db, registry, "send", {**APPROVED, "amount": 60})
    assert status(db, workflow_id) == "completed"
    assert calls.of("send") == [{**APPROVED, "amount": 60}]
    assert uses(db, old["id"]) == 1
    assert rules.list_rules(db, ADMIN)[0]["condition"] == old["condition"]
