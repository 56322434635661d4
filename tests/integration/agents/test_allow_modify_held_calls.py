"""``allow_modify: false`` on an agent's held calls: accepted, and honoured.

It was refused when a definition loaded because the engine did not enforce it on a
request that guards a call. Now it is enforced (core.approvals.voting), so an agent's
``approval: {allow_modify: false}`` reaches the held call's request: the approver may
approve the call as the agent made it, or reject it, and no change of its arguments or
of a budget's amount is recorded or run (SQLite and PostgreSQL, tool-calling and code
agents). Every test checks what the ``charge`` tool RECEIVED.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.agents import profiles
from core.base.errors import InvalidResponse
from core.definitions.agents import register_profile
from core.definitions.workflow import parse_definition
from core.engine.tools import ToolRegistry
from core.store.db import Database
from tests.helpers.engine import Calls, open_approval_of, run, status
from tests.integration.agents.scripted import scripted
from tests.integration.agents.test_held_call_approval_config import (
    ADMIN,
    FIN,
    KINDS,
    answer,
    charging,
    people,
    received,
    start,
)

FIXED = {"requested_from": FIN, "allow_modify": False}
FIXED_BUDGET = {**FIXED, "type": "budget", "amount_argument": "amount"}


def test_it_is_accepted_when_a_definition_loads_and_a_profile_is_saved(db: Database) -> None:
    parse_definition({"name": "x", "steps": [charging("tool_calling", 500, FIXED)]})
    parse_definition({"name": "x", "steps": [charging("tool_calling", 500, FIXED_BUDGET)]})
    people(db)
    profiles.create_profile(
        db, {"name": "payer", "held_tools": ["charge"], "settings": {"approval": FIXED}}, ADMIN
    )
    register_profile("payer-fixed", {"held_tools": ["charge"], "approval": FIXED})


@pytest.mark.parametrize("kind", KINDS)
def test_the_approver_cannot_change_the_held_calls_arguments(
    db: Database, registry: ToolRegistry, calls: Calls, kind: str
) -> None:
    workflow_id = start(db, charging(kind, 500, FIXED))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert request.config.get("allow_modify") is False
    changes: list[tuple[str, dict[str, Any]]] = [
        ("modify", {"arguments": {"amount": 1}}),
        ("approve", {"arguments": {"currency": "EUR"}}),
        ("modify", {}),
    ]
    for decision, data in changes:
        with pytest.raises(InvalidResponse, match="allow_modify: false"):
            answer(db, request.id, FIN, decision, data)
    assert open_approval_of(db, workflow_id).id == request.id  # still open, nothing recorded
    run(db, registry)
    assert received(calls) == []
    assert answer(db, request.id, FIN, "approve").status == "approved"
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [(c["amount"], c["currency"]) for c in calls.of("charge")] == [(500, "USD")]


@pytest.mark.parametrize("kind", KINDS)
def test_the_approver_cannot_lower_a_held_budget(
    db: Database, registry: ToolRegistry, calls: Calls, kind: str
) -> None:
    workflow_id = start(db, charging(kind, 500, FIXED_BUDGET))
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert request.approval_type == "budget"
    with pytest.raises(InvalidResponse, match="approved_amount: .*allow_modify: false"):
        answer(db, request.id, FIN, "approve", {"approved_amount": 100})
    run(db, registry)
    assert received(calls) == []
    assert answer(db, request.id, FIN, "approve").status == "approved"
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert received(calls) == [500]


def test_a_stored_profiles_allow_modify_false_is_honoured(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    script: list[dict[str, Any]] = [{"call": "charge", "args": {"amount": 500}}, {"final": "done"}]
    model = scripted(script)["model"]
    people(db)
    profiles.create_profile(
        db,
        {
            "name": "payer",
            "model_provider": "python",
            "model_id": model["model_id"],
            "held_tools": ["charge"],
            "settings": {"model": {"options": model["options"]}, "approval": FIXED},
        },
        ADMIN,
    )
    workflow_id = start(db, {"name": "agent", "type": "task", "task": "Charge.", "agent": "payer"})
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    with pytest.raises(InvalidResponse, match="allow_modify: false"):
        answer(db, request.id, FIN, "modify", {"arguments": {"amount": 1}})
    assert answer(db, request.id, FIN, "approve").status == "approved"
    run(db, registry)
    assert received(calls) == [500]
