"""Deterministic stand-in tools for the demo workflows.

They do nothing outside Countersign; each derives its result from its
idempotency key, so a step that runs twice reports the same charge or
release id, as a real idempotent API would. ``core.runtime.load_tools`` registers
them (``register_demo_tools``); importing this module registers nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from core.engine.tools import ToolRegistry


def _ref(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def validate_order(order_id: str, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Check an order's items and totals."""
    items = items or []
    total = sum(float(i.get("price", 0)) * int(i.get("quantity", 1)) for i in items)
    return {"order_id": order_id, "valid": bool(items), "total": round(total, 2), "items": len(items)}


def reserve_inventory(order_id: str, idempotency_key: str) -> dict[str, Any]:
    """Hold stock for an order."""
    return {"reservation": _ref("res", idempotency_key), "order_id": order_id}


def release_inventory(output: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """Compensation: release a stock reservation."""
    return {"released": output.get("reservation")}


def charge_payment(amount: float, currency: str, idempotency_key: str) -> dict[str, Any]:
    """Charge the customer (idempotent by key)."""
    return {"charge_id": _ref("ch", idempotency_key), "amount": amount, "currency": currency}


def refund_payment(output: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """Compensation: refund a charge."""
    return {"refund_id": _ref("re", idempotency_key), "charge_id": output.get("charge_id")}


def send_confirmation(order_id: str, message: str, idempotency_key: str) -> dict[str, Any]:
    """Email the order confirmation to the customer (a person approves it first)."""
    return {"sent": True, "order_id": order_id, "message_id": _ref("msg", idempotency_key)}


def run_checks(service: str, version: str) -> dict[str, Any]:
    """Run tests and security scans for a release."""
    return {"service": service, "version": version, "tests": "passed", "vulnerabilities": 0}


def deploy_release(service: str, version: str, idempotency_key: str) -> dict[str, Any]:
    """Deploy a release to production."""
    return {"deployment": _ref("dep", idempotency_key), "service": service, "version": version}


def rollback_release(output: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """Compensation: put the previous release back."""
    return {"rolled_back": output.get("deployment")}


def publish_document(document: str, idempotency_key: str) -> dict[str, Any]:
    """Publish a reviewed document."""
    return {"published": document, "url": f"https://docs.example.com/{_ref('doc', idempotency_key)}"}


def unpublish_document(output: dict[str, Any]) -> dict[str, Any]:
    """Compensation: take a published document down."""
    return {"unpublished": output.get("url")}


def echo(**kwargs: Any) -> dict[str, Any]:
    """Return the arguments it was given."""
    return dict(kwargs)


DEMO_TOOLS: dict[str, Callable[..., Any]] = {
    "validate_order": validate_order,
    "reserve_inventory": reserve_inventory,
    "release_inventory": release_inventory,
    "charge_payment": charge_payment,
    "refund_payment": refund_payment,
    "send_confirmation": send_confirmation,
    "run_checks": run_checks,
    "deploy_release": deploy_release,
    "rollback_release": rollback_release,
    "publish_document": publish_document,
    "unpublish_document": unpublish_document,
    "echo": echo,
}


def register_demo_tools(registry: ToolRegistry) -> None:
    """Add the demo templates' tools to ``registry`` (again is harmless)."""
    for name, function in DEMO_TOOLS.items():
        registry.add(name, function)
