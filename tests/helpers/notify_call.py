"""A guarded call that leaves optional choices and flags out: ``notify_customer``.

The call sets ``order_id`` and ``message``, sets ``escalate`` (a boolean or
null) to null, and leaves out ``urgent`` (a boolean, default False),
``channel`` (one of "sms", "email"; default "email") and ``tier`` (one of "a",
"b", or null). Each channel's test answers it untouched and asserts the tool
received its own defaults for them (``DEFAULTS``), not a value a form made up.
"""

from __future__ import annotations

from typing import Any, Literal

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest
from tests.helpers.approved_calls import FINANCE, REQUESTER, run
from tests.helpers.engine import Calls

ARGUMENTS = {"order_id": "ORD-1", "message": "Your order shipped", "escalate": None}
# What the tool gets when the approver leaves the optional arguments alone: its defaults.
DEFAULTS = {"urgent": False, "channel": "email", "escalate": None, "tier": None}
RECEIVED = {"order_id": "ORD-1", "message": "Your order shipped", **DEFAULTS}


def notify_registry(calls: Calls) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register("notify_customer")
    def notify_customer(
        order_id: str,
        message: str,
        idempotency_key: str,
        urgent: bool = False,
        channel: Literal["sms", "email"] = "email",
        escalate: bool | None = None,
        tier: Literal["a", "b"] | None = None,
    ) -> dict[str, Any]:
        """Send a customer notice (records what it received)."""
        calls.add(
            "notify_customer",
            order_id=order_id,
            message=message,
            urgent=urgent,
            channel=channel,
            escalate=escalate,
            tier=tier,
        )
        return {"sent": True}

    return reg


def waiting_notice(db: Database, registry: ToolRegistry) -> ApprovalRequest:
    """A workflow whose guarded ``notify_customer`` call waits for finance: its request."""
    add_user(db, REQUESTER, role="service")
    step = {
        "name": "notify",
        "type": "tool",
        "tool": "notify_customer",
        "requires_approval": True,
        "args": ARGUMENTS,
        "approval_config": {"type": "binary", "requested_from": FINANCE},
    }
    workflow_id = ops.create_workflow(
        db, {"name": "notify a customer", "steps": [step]}, created_by=REQUESTER
    ).id
    run(db, registry)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    assert (approval.proposed_call or {})["arguments"] == ARGUMENTS  # urgent, channel, tier left out
    return approval
