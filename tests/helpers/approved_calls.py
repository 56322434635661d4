"""The approved-call scenario every channel's test runs: a guarded ``pay`` call.

``pay_registry(calls)`` is a fresh registry whose ``pay`` tool records what it
*received*; ``waiting(db, registry, ...)`` starts a workflow whose ``pay``
step needs ``finance@example.com``'s approval and runs it until it waits.
A channel's test answers the request through its channel, runs the runner
again and asserts ``calls.of("pay")``.
"""

from __future__ import annotations

from typing import Any

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import ApprovalRequest
from tests.helpers.engine import Calls

FINANCE = "finance@example.com"
REQUESTER = "requester@example.com"
PROPOSED = {"amount": 12500, "currency": "USD", "note": "invoice 7"}


def pay_registry(calls: Calls) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register("pay")
    def pay(amount: float, currency: str, idempotency_key: str, note: str = "") -> dict[str, Any]:
        """Pay someone (records what it received)."""
        calls.add("pay", amount=amount, currency=currency, note=note)
        return {"paid": amount, "currency": currency}

    @reg.register("refund")
    def refund(amount: float) -> dict[str, Any]:
        """Refund someone (records what it received)."""
        calls.add("refund", amount=amount)
        return {}

    return reg


def pay_step(approval_type: str = "binary", **config: Any) -> dict[str, Any]:
    return {
        "name": "pay",
        "type": "tool",
        "tool": "pay",
        "requires_approval": True,
        "args": {"amount": "${input.amount}", "currency": "USD", "note": "${input.note}"},
        "approval_config": {"type": approval_type, "requested_from": FINANCE, **config},
    }


def run(db: Database, registry: ToolRegistry) -> int:
    return build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)


def start_payment(
    db: Database, registry: ToolRegistry, amount: float = 12500, approval_type: str = "binary", **config: Any
) -> str:
    """Start a workflow whose ``pay`` call of ``amount`` is guarded, and run it: its id
    (completed when a standing rule released the call, else waiting for finance).

    REQUESTER, who starts it, is a service account (core.identity.permissions)."""
    add_user(db, REQUESTER, role="service")
    workflow_id = ops.create_workflow(
        db,
        {"name": "pay an invoice", "steps": [pay_step(approval_type, **config)]},
        input_data={"amount": amount, "note": PROPOSED["note"]},
        created_by=REQUESTER,
    ).id
    run(db, registry)
    return workflow_id


def released(db: Database, registry: ToolRegistry, amount: float) -> bool:
    """Whether a new guarded payment of ``amount`` ran without anybody being asked."""
    return ops.get_workflow(db, start_payment(db, registry, amount)).status == "completed"


def waiting(
    db: Database, registry: ToolRegistry, approval_type: str = "binary", amount: float = 12500, **config: Any
) -> tuple[str, ApprovalRequest]:
    """A workflow whose guarded ``pay`` call waits for finance; (workflow id, request)."""
    workflow_id = start_payment(db, registry, amount, approval_type, **config)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    return workflow_id, approval


# What each channel's test asks for, and what the tool must then have received
# (None: the answer is refused and the tool never runs).
CASES: dict[str, tuple[str, str, dict[str, Any], dict[str, Any] | None]] = {
    # name: (approval type, decision, data, received)
    "approve": ("binary", "approve", {}, PROPOSED),
    "edited": (
        "binary",
        "modify",
        {"arguments": {"note": "invoice 7, net 30"}},
        {**PROPOSED, "note": "invoice 7, net 30"},
    ),
    "budget_lower": ("budget", "approve", {"approved_amount": 9000}, {**PROPOSED, "amount": 9000}),
    "schema_broken": ("binary", "modify", {"arguments": {"amount": "a lot"}}, None),
    "other_tool": ("binary", "modify", {"tool": "refund", "arguments": {"amount": 1}}, None),
}


def nothing_recorded_and_nothing_ran(
    db: Database,
    calls: Calls,
    registry: ToolRegistry,
    approval_id: str,
    *,
    decision_data: dict[str, Any] | None = None,
) -> None:
    """A refused answer left the request as it was: no vote, still open, the tool not run;
    a plain approval afterwards runs the call exactly as shown (and, when given, is
    decided with ``decision_data``)."""
    engine = ApprovalEngine(db)
    assert engine.responses(approval_id) == []
    assert engine.get(approval_id).status == "pending"
    run(db, registry)
    assert calls.of("pay") == []
    decided = engine.respond_to_approval(approval_id, FINANCE, "approve", {})
    assert decided.status == "approved"
    if decision_data is not None:
        assert decided.decision_data == decision_data
    run(db, registry)
    assert calls.of("pay") == [PROPOSED]
