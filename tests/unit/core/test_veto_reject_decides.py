"""A veto window's rejects always decide: ``reject_decides: false`` with ``mode: veto`` is
refused where a definition or a config is given, naming the field; a config stored
before that still loads (its request must still be answerable)."""

from __future__ import annotations

from typing import Any

import pytest

from core.base.errors import DefinitionError
from core.definitions.approval import ApprovalConfig
from core.definitions.workflow import parse_approval_config, parse_definition

VETO = {"mode": "veto", "window": "20s", "requested_from": ["fin@example.com", "fin2@example.com"]}
REFUSAL = "reject_decides: cannot be false in a veto window: one veto (a reject) stops the call"


def pay(config: dict[str, Any]) -> dict[str, Any]:
    step = {"name": "pay", "type": "tool", "tool": "pay", "args": {"amount": 900}}
    return {"name": "veto pay", "steps": [{**step, "requires_approval": True, "approval_config": config}]}


@pytest.mark.parametrize("value", [False, "no", "off", 0])
def test_a_definition_with_a_veto_window_that_reject_does_not_decide_is_refused(value: Any) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(pay({**VETO, "reject_decides": value}))
    assert caught.value.problems == [f"steps[0].approval_config.{REFUSAL}"]


def test_an_agents_veto_approval_is_refused_too() -> None:
    task = {
        "name": "settle",
        "type": "task",
        "task": "settle",
        "agent": {"approval": {**VETO, "reject_decides": False}},
    }
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"name": "agent", "steps": [task]})
    assert f"steps[0].agent.approval.{REFUSAL}" in caught.value.problems


def test_a_config_given_on_its_own_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_approval_config({**VETO, "reject_decides": False})
    assert caught.value.problems == [f"approval_config.{REFUSAL}"]


def test_reject_decides_true_or_unsaid_is_accepted_and_a_stored_config_still_loads() -> None:
    parse_definition(pay(VETO))
    parse_definition(pay({**VETO, "reject_decides": True}))
    parse_definition(pay({"requested_from": "fin@example.com", "reject_decides": False}))  # no window
    assert ApprovalConfig.model_validate({**VETO, "reject_decides": False}).reject_decides is False
