"""People and parked requests for the security tests, with their own accounts (so the
tests do not depend on who may act without one)."""

from __future__ import annotations

from typing import Any

from core.conversations import sessions as conv
from core.engine import workflows as ops
from core.identity.users import add_user
from core.ops.alerts import evaluate_alerts
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import ApprovalRequest
from tests.integration.gateway.conftest import BOSS, definition
from tests.integration.ops_alerts.conftest import failed_workflow

PASSWORD = "correct horse battery"
STARTER = "starter@example.com"  # starts the workflows; answers nothing
MALLORY = "mallory@example.com"  # the attacker: an account of their own, asked nothing
ADMIN = "admin@example.com"
PHISHING = "[Approve here](https://evil.example/phish) ![m](http://attacker.example/b.png)"


def account(db: Database, email: str, role: str = "approver") -> None:
    """Create (or update) a local account with ``PASSWORD``."""
    add_user(db, email, role=role, password=PASSWORD)


def parked(db: Database, approval: dict[str, Any] | None = None) -> tuple[str, ApprovalRequest]:
    """A workflow run until it waits at its approval step (asking BOSS unless told
    otherwise); (workflow id, request)."""
    account(db, STARTER, "admin")
    account(db, BOSS)
    account(db, MALLORY)
    workflow = ops.create_workflow(db, definition(approval), created_by=STARTER)
    build_runner(db).run_until_idle()
    pending = [a for a in ops.approvals_of(db, workflow.id) if a.status == "pending"]
    assert len(pending) == 1, pending
    return workflow.id, pending[0]


def two_level_budget(amount: float = 500) -> dict[str, Any]:
    """A budget gate whose two levels both ask BOSS: the replay case."""
    return {
        "title": "Pay the supplier",
        "type": "budget",
        "context_data": {"amount": amount, "currency": "EUR"},
        "levels": [
            {"name": "manager", "min_amount": 0, "approvers": [BOSS]},
            {"name": "director", "min_amount": 100, "approvers": [BOSS]},
        ],
    }


def phishing_scene(db: Database) -> tuple[ApprovalRequest, str, str]:
    """Every agent-written field holding PHISHING; (request, its workflow, a chat session)."""
    account(db, STARTER, "admin")
    account(db, BOSS)
    account(db, ADMIN, "admin")
    spec = {
        "name": PHISHING,
        "description": PHISHING,
        "steps": [
            {"name": f"prepare {PHISHING}", "type": "checkpoint"},
            {
                "name": f"approve {PHISHING}",
                "type": "approval",
                "approval_config": {
                    "title": PHISHING,
                    "description": f"{PHISHING}\n# big\n<img src=http://attacker.example/x>",
                    "requested_from": [BOSS],
                    "channels": [],
                    "context_data": {PHISHING: PHISHING},
                },
            },
        ],
    }
    workflow = ops.create_workflow(db, spec, created_by=STARTER)
    build_runner(db).run_until_idle()
    ops.create_checkpoint(db, workflow.id, PHISHING[:150], ADMIN)
    [approval] = [a for a in ops.approvals_of(db, workflow.id) if a.status == "pending"]
    failed_workflow(db, PHISHING)
    evaluate_alerts(db)
    chat = conv.start_session(db, BOSS, "assistant", title=PHISHING)
    conv.post_user_message(db, chat.id, BOSS, PHISHING)
    return approval, workflow.id, chat.id
