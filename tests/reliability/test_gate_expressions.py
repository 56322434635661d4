"""Gate expressions through every door that takes one (SQLite and PostgreSQL).

A security tester started, with a service token (``workflows:start`` only), a workflow
whose gate was ``len(tool.center(2000000000)) < 0``: the definition check accepted it and
the runner evaluating it allocated 2 GB. Here each door refuses a method call by name
before anything is stored (a workflow started over REST, a standing rule over REST and in
core, an agent profile), and a rule stored before the check knew better (written straight
into the table) is evaluated within bounds: it releases nothing, changes nothing of the
call, and the runner's memory stays small.
"""

from __future__ import annotations

import tracemalloc
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.agents.profiles import create_profile
from core.approvals import standing_rules as rules
from core.approvals.engine import ApprovalEngine
from core.base.errors import DefinitionError, InvalidAgentProfile, InvalidRule
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import AgentProfile, ApprovalRequest, StandingRule, Workflow, utcnow
from tests.helpers.approved_calls import FINANCE, REQUESTER, pay_registry, pay_step
from tests.helpers.engine import Calls, open_approval_of, run, status
from tests.integration.gateway.conftest import token_for

ADMIN = "policy-admin@example.com"
BOMB = "len(tool.center(2000000000)) < 0"  # refused by every check: never evaluated here
CALL = "tool.center(2000000000)"
# Stored before the check: 100 MB and a changed call when evaluated before the fix.
STORED = ["args.update({'amount': 1}) == None", "len(tool.center(100000000)) > 0", "args.get('amount') > 0"]


def gated_step(when: str) -> dict[str, Any]:
    return {**pay_step(), "requires_approval": {"when": when}}


def test_a_service_token_cannot_start_a_workflow_whose_gate_calls_a_method(
    db: Database, client: TestClient
) -> None:
    headers = token_for(db, "agent@example.com", role="service")
    body = {"definition": {"name": "gate-bomb", "steps": [gated_step(BOMB)]}, "input": {}, "start": True}
    answer = client.post("/api/workflows", json=body, headers=headers)
    assert answer.status_code == 422, answer.text
    message = answer.json()["message"]
    assert f"steps[0].requires_approval.when: '{BOMB}' calls {CALL}" in message
    assert "only len, min, max, abs and round" in message
    with pytest.raises(DefinitionError, match=r"calls tool\.center"):
        ops.create_workflow(
            db, {"name": "gate-bomb", "steps": [gated_step(BOMB)]}, created_by="agent@example.com"
        )
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Workflow)) == 0


def test_a_standing_rule_whose_condition_calls_a_method_is_refused(db: Database, client: TestClient) -> None:
    headers = token_for(db, ADMIN, role="admin")
    body = {"tool": "pay", "condition": BOMB, "days": 7}
    answer = client.post("/api/rules", json=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert f"condition: '{BOMB}' calls {CALL}" in answer.json()["message"]
    with pytest.raises(InvalidRule, match=r"condition: .*calls args\.get\('amount'\)"):
        rules.create_rule(db, ADMIN, tool="pay", condition="args.get('amount') <= 200", days=7)
    created = rules.create_rule(db, ADMIN, tool="pay", condition="args.amount <= 200", days=7)
    changed = client.patch(f"/api/rules/{created['id']}", json={"condition": BOMB}, headers=headers)
    assert changed.status_code == 422, changed.text
    with db.read() as session:
        assert session.scalars(select(StandingRule.condition)).all() == ["args.amount <= 200"]


def test_an_agent_profile_whose_held_gate_calls_a_method_is_refused(db: Database) -> None:
    add_user(db, ADMIN, role="admin")
    profile = {
        "name": "charger",
        "role": "charges orders",
        "tools": ["lookup"],
        "held_tools": [{"name": "charge", "when": BOMB}],
    }
    with pytest.raises(InvalidAgentProfile, match=r"held_tools\[0\]\.when: .*calls tool\.center"):
        create_profile(db, profile, ADMIN)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(AgentProfile)) == 0


def test_a_rule_stored_before_the_check_releases_nothing_and_changes_nothing(db: Database) -> None:
    """Conditions written straight into the table, as a rule made before this check was
    stored: evaluated when a request opens, each fails closed, within bounds."""
    add_user(db, ADMIN, role="admin")
    with db.session() as session:
        for condition in STORED:
            session.add(
                StandingRule(
                    tool="pay",
                    condition=condition,
                    tenant=None,
                    workflow_name=None,
                    expires_at=utcnow() + timedelta(days=7),
                    created_by=ADMIN,
                )
            )
    calls = Calls()
    registry: ToolRegistry = pay_registry(calls)
    add_user(db, REQUESTER, role="service")
    workflow_id = ops.create_workflow(
        db,
        {"name": "pay an invoice", "steps": [pay_step()]},
        input_data={"amount": 150, "note": "invoice 7"},
        created_by=REQUESTER,
    ).id
    tracemalloc.start()
    try:
        run(db, registry)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000, peak  # 100 MB and more before the fix
    assert status(db, workflow_id) == "waiting_approval"  # no rule released it
    request = open_approval_of(db, workflow_id)
    assert request.proposed_call is not None
    assert request.proposed_call["arguments"] == {"amount": 150, "currency": "USD", "note": "invoice 7"}
    with db.read() as session:
        assert session.scalars(select(StandingRule.uses).order_by(StandingRule.id)).all() == [0, 0, 0]
        assert session.scalars(select(ApprovalRequest.decided_by)).all() == [None]
    ApprovalEngine(db).respond_to_approval(request.id, FINANCE, "approve")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert calls.of("pay") == [{"amount": 150, "currency": "USD", "note": "invoice 7"}]
