"""Gateway test helpers: a TestClient over the ``db`` fixture (SQLite and
PostgreSQL), API tokens, and workflows parked at an approval step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.engine import workflows as ops
from core.identity.api_tokens import create_token
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import ApprovalRequest
from gateway.app import create_app

BOSS = "boss@example.com"
OTHER = "other@example.com"
REQUESTER = "agent@example.com"  # a service account: starts workflows, answers nothing
ADMIN = "admin@example.com"


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    """The gateway without the Gradio UI (built only where a test needs it)."""
    with TestClient(create_app(db, approver_ui=False)) as test_client:
        yield test_client


def token_for(db: Database, email: str, role: str = "approver") -> dict[str, str]:
    add_user(db, email, role=role)
    _, token = create_token(db, email, "tests")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def boss(db: Database) -> dict[str, str]:
    """Authorization headers of the approver BOSS."""
    return token_for(db, BOSS)


@pytest.fixture
def admin(db: Database) -> dict[str, str]:
    """Authorization headers of the platform admin ADMIN."""
    return token_for(db, ADMIN, role="admin")


@pytest.fixture
def other(db: Database) -> dict[str, str]:
    """Authorization headers of a user who is not an approver."""
    return token_for(db, OTHER)


def definition(approval: dict[str, Any] | None = None, *, checkpoint: bool = True) -> dict[str, Any]:
    config = {
        "title": "Ship release <b>1.2</b>",
        "description": "Deploy & tell <users>",
        "requested_from": [BOSS],
        "channels": [],
        **(approval or {}),
    }
    steps: list[dict[str, Any]] = [
        {"name": "prepare", "type": "checkpoint"} if checkpoint else None,
        {"name": "approve", "type": "approval", "approval_config": config},
        {"name": "finish", "type": "checkpoint"},
    ]
    return {"name": "Release", "steps": [s for s in steps if s is not None]}


def waiting_workflow(db: Database, approval: dict[str, Any] | None = None) -> tuple[str, ApprovalRequest]:
    """A workflow started by the service account REQUESTER, run until it waits at
    its approval step; (workflow id, request)."""
    add_user(db, REQUESTER, role="service")
    workflow = ops.create_workflow(db, definition(approval), created_by=REQUESTER)
    build_runner(db).run_until_idle()
    pending = [a for a in ops.approvals_of(db, workflow.id) if a.status == "pending"]
    assert len(pending) == 1, pending
    return workflow.id, pending[0]
