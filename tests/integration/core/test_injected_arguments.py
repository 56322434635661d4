"""A call never gives a parameter Countersign injects (``idempotency_key``, ``tool_context``):
it would be shown and approved with one value while the tool receives Countersign's own.
Refused, in words naming the argument, when a definition is checked, when a call is made
for a request (a step's or an agent's held call) and when an answer edits one (SQLite and
PostgreSQL where a database is involved)."""

from __future__ import annotations

from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.base.errors import CallNotReleased, DefinitionError, InvalidResponse
from core.definitions.calls import make_call
from core.definitions.workflow import parse_definition
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from tests.helpers.approved_calls import FINANCE, REQUESTER
from tests.helpers.engine import Calls, open_approval_of, run, status


def pay_step(args: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": "pay", "type": "tool", "tool": "pay", "args": args, "requires_approval": True, **more}


@pytest.mark.parametrize("name", ["idempotency_key", "tool_context"])
def test_a_definition_giving_an_injected_parameter_is_refused(name: str) -> None:
    definition = {
        "name": "transfer",
        "steps": [
            pay_step(
                {"amount": 250, name: "PAY-2026-0001"},
                approval_config={"requested_from": FINANCE},
                compensate={"tool": "refund", "args": {name: "x"}},
            )
        ],
    }
    with pytest.raises(DefinitionError) as caught:
        parse_definition(definition)
    assert caught.value.problems == [
        f"steps[0].args.{name}: is Countersign's own parameter (the tool receives the run's {name}), "
        "not an argument a call may give; rename the argument",
        f"steps[0].compensate.args.{name}: is Countersign's own parameter (the tool receives the "
        f"run's {name}), not an argument a call may give; rename the argument",
    ]


def test_a_call_for_a_request_giving_one_is_refused() -> None:
    """Steps' and agents' held calls are made here (core.engine.person_wait, core.agents.policy)."""
    with pytest.raises(CallNotReleased, match=r"arguments\.idempotency_key: is Countersign's own parameter"):
        make_call("pay", {"amount": 250, "idempotency_key": "PAY-2026-0001"})


@pytest.fixture
def open_registry(calls: Calls) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register("send")
    def send(amount: float, idempotency_key: str, **more: Any) -> dict[str, Any]:
        """Send money; takes any further keyword argument (records what it received)."""
        calls.add("send", amount=amount, key=idempotency_key, **more)
        return {"sent": amount}

    return reg


def test_starting_such_a_workflow_is_refused(db: Database, open_registry: ToolRegistry, calls: Calls) -> None:
    add_user(db, REQUESTER, role="service")
    step = {**pay_step({"amount": 250, "idempotency_key": "PAY-1"}), "tool": "send"}
    step["approval_config"] = {"requested_from": FINANCE}
    with pytest.raises(DefinitionError, match=r"steps\[0\]\.args\.idempotency_key"):
        ops.create_workflow(db, {"name": "transfer", "steps": [step]}, created_by=REQUESTER)
    run(db, open_registry)
    assert calls.of("send") == []


def test_an_edit_giving_one_is_refused(db: Database, open_registry: ToolRegistry, calls: Calls) -> None:
    add_user(db, REQUESTER, role="service")
    add_user(db, FINANCE, role="approver")
    step = {**pay_step({"amount": 250}), "tool": "send", "approval_config": {"requested_from": FINANCE}}
    workflow_id = ops.create_workflow(db, {"name": "transfer", "steps": [step]}, created_by=REQUESTER).id
    run(db, open_registry)
    request = open_approval_of(db, workflow_id)
    with pytest.raises(InvalidResponse, match=r"arguments\.tool_context: is Countersign's own parameter"):
        ApprovalEngine(db).respond_to_approval(
            request.id, FINANCE, "modify", data={"arguments": {"tool_context": {"forged": True}}}
        )
    assert ApprovalEngine(db).get(request.id).status == "pending"
    run(db, open_registry)
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("send") == []
