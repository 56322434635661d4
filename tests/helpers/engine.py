"""Helpers for engine tests on real databases: start a workflow, run it, read its
events and step runs, record what tools received (``Calls``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import ApprovalRequest, Notification, StepRun, User, WorkflowEvent

REQUESTER = "requester@example.com"


class Calls:
    """What the test tools were called with, in order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[str, dict[str, Any]]] = []

    def add(self, tool: str, **kwargs: Any) -> None:
        with self._lock:
            self.items.append((tool, kwargs))

    def of(self, tool: str) -> list[dict[str, Any]]:
        with self._lock:
            return [kw for name, kw in self.items if name == tool]

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.items]


def start(
    db: Database,
    steps: list[dict[str, Any]],
    *,
    input_data: dict[str, Any] | None = None,
    created_by: str = REQUESTER,
    name: str = "test workflow",
) -> str:
    """Start a workflow as ``created_by``, a service account unless it has one already
    (starting needs workflows:start, core.identity.permissions)."""
    if "@" in created_by and not account_exists(db, created_by):
        add_user(db, created_by, role="service")
    return ops.create_workflow(
        db, {"name": name, "steps": steps}, input_data=input_data, created_by=created_by
    ).id


def account_exists(db: Database, email: str) -> bool:
    with db.read() as session:
        return session.get(User, email.strip().lower()) is not None


def accounts(db: Database, role: str, *emails: str) -> None:
    """Give each of ``emails`` an account with ``role`` (who acts in a test needs one)."""
    for email in emails:
        add_user(db, email, role=role)


def run(db: Database, registry: ToolRegistry, **kwargs: Any) -> int:
    return build_runner(db, registry=registry, lease_seconds=10, **kwargs).run_until_idle(max_seconds=60)


def status(db: Database, workflow_id: str) -> str:
    return ops.get_workflow(db, workflow_id).status


def open_approval_of(db: Database, workflow_id: str) -> ApprovalRequest:
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    return approval


def event_types(db: Database, workflow_id: str) -> list[str]:
    return [e.event_type for e in ops.events_of(db, workflow_id)]


def events(db: Database, workflow_id: str, event_type: str) -> list[WorkflowEvent]:
    return [e for e in ops.events_of(db, workflow_id) if e.event_type == event_type]


def step_runs(db: Database, workflow_id: str) -> list[StepRun]:
    return ops.step_runs_of(db, workflow_id)


def notifications(db: Database, approval_id: str) -> list[tuple[str, str, str]]:
    with db.read() as session:
        rows = session.scalars(
            select(Notification)
            .where(Notification.approval_id == approval_id)
            .order_by(Notification.kind, Notification.channel, Notification.recipient)
        ).all()
        return [(n.kind, n.channel, n.recipient) for n in rows]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or condition}")
        time.sleep(0.02)


def tool(name: str, label: str | None = None, **extra: Any) -> dict[str, Any]:
    """A tool step calling the recording ``do`` tool."""
    return {"name": name, "type": "tool", "tool": "do", "args": {"label": label or name}, **extra}


def approval(name: str, **config: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "approval",
        "approval_config": {"requested_from": "boss@example.com", **config},
    }
