"""Reminders, escalation chains, on_expiry and veto windows in definitions: accepted
spellings, what they are stored as, and refusals naming the path."""

from __future__ import annotations

from typing import Any

import pytest

from core.base.errors import DefinitionError
from core.definitions.approval import ApprovalConfig
from core.definitions.workflow import parse_approval_config, parse_definition


def definition(**config: Any) -> dict[str, Any]:
    return {
        "name": "pay",
        "steps": [
            {"name": "ok", "type": "approval", "approval_config": {"requested_from": "a@x.com"}},
            {
                "name": "pay",
                "type": "approval",
                "approval_config": {"requested_from": "boss@example.com", **config},
            },
        ],
    }


def config_of(**config: Any) -> ApprovalConfig:
    parsed = parse_definition(definition(**config)).steps[1].approval_config
    assert parsed is not None
    return parsed


def problems_of(**config: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(definition(**config))
    return caught.value.problems


def stored(config: ApprovalConfig) -> dict[str, Any]:
    dumped = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    again = ApprovalConfig.model_validate(dumped)  # a stored config reads back the same
    assert again.model_dump(mode="json", by_alias=True, exclude_none=True) == dumped
    return dumped


def test_reminders_are_shares_of_the_timeout_stored_as_written() -> None:
    config = config_of(timeout="1h", remind=["50%", "90%"])
    assert config.remind == [50.0, 90.0]
    assert stored(config)["remind"] == ["50%", "90%"]


@pytest.mark.parametrize(
    ("remind", "problem"),
    [
        (["150%"], "steps[1].approval_config.remind[0]: must be more than 0% and less than 100%"),
        (
            ["50%", 0.9],
            "steps[1].approval_config.remind[1]: must be a share of the time to answer "
            "such as '50%', not 0.9",
        ),
        (["50%", "50 %"], "steps[1].approval_config.remind[1]: 50% is listed twice"),
    ],
)
def test_bad_reminders_are_refused_by_path(remind: list[Any], problem: str) -> None:
    assert problems_of(timeout="1h", remind=remind) == [problem]


def test_reminders_need_a_deadline() -> None:
    assert problems_of(remind=["50%"]) == [
        "steps[1].approval_config.remind: needs a deadline to count from: set timeout (or a veto window)"
    ]


def test_escalate_to_is_a_chain_of_levels_and_escalates_by_itself() -> None:
    config = config_of(
        timeout="4h",
        escalate_to=["manager@example.com", ["director@example.com", "cfo@example.com"], "admins"],
    )
    assert config.escalate_to == [
        ["manager@example.com"],
        ["director@example.com", "cfo@example.com"],
        ["admins"],
    ]
    assert config.on_timeout == "escalate"
    assert config.expiry_action == "reject"  # fails closed unless stated
    assert stored(config)["escalate_to"] == config.escalate_to


def test_one_escalation_target_is_a_one_level_chain() -> None:
    assert config_of(timeout="1h", on_timeout="escalate", escalate_to="chief@example.com").escalate_to == [
        ["chief@example.com"]
    ]


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            {"escalate_to": ["m@x.com", []]},
            "steps[1].approval_config.escalate_to[1]: list should have at least 1 item after "
            "validation, not 0",
        ),
        (
            {"escalate_to": "m@x.com", "on_timeout": "reject"},
            "steps[1].approval_config.escalate_to: is only used when on_timeout is escalate, and "
            "on_timeout is reject",
        ),
        ({"on_expiry": "maybe"}, "steps[1].approval_config.on_expiry: must be one of reject, approve"),
        (
            {"on_expiry": "approve", "on_timeout": "reject"},
            "steps[1].approval_config.on_expiry: approve disagrees with on_timeout reject; give one",
        ),
    ],
)
def test_bad_escalation_settings_are_refused_by_path(config: dict[str, Any], problem: str) -> None:
    assert problems_of(timeout="1h", **config) == [problem]


def test_on_expiry_approve_is_stored_once() -> None:
    config = config_of(timeout="1h", escalate_to=["m@x.com"], on_expiry="approve")
    assert config.expiry_action == "approve"
    assert stored(config)["on_expiry"] == "approve"
    assert config_of(timeout="1h", on_expiry="approve").on_timeout == "approve"


def test_a_veto_window_is_the_deadline() -> None:
    config = config_of(mode="veto", window="15m", remind=["50%"])
    assert (config.mode, config.deadline_seconds, config.timeout) == ("veto", 900.0, None)
    assert stored(config)["window"] == 900.0


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            {"mode": "veto"},
            "steps[1].approval_config.window: required when mode is veto (how long "
            "approvers have to veto, e.g. 15m)",
        ),
        (
            {"mode": "veto", "window": "15m", "timeout": "1h"},
            "steps[1].approval_config.timeout: a veto window has no timeout: the call runs when the "
            "window ends unless someone vetoes",
        ),
        (
            {"mode": "veto", "window": "15m", "on_expiry": "reject"},
            "steps[1].approval_config.on_expiry: a veto window has no on_expiry: the call runs when "
            "the window ends unless someone vetoes",
        ),
        (
            {"window": "15m"},
            "steps[1].approval_config.window: only a veto (mode: veto) has a window; use timeout",
        ),
        ({"mode": "veto", "window": "400d"}, "steps[1].approval_config.window: must be at most 366 days"),
        ({"mode": "later", "window": "15m"}, "steps[1].approval_config.mode: must be one of approval, veto"),
    ],
)
def test_bad_veto_settings_are_refused_by_path(config: dict[str, Any], problem: str) -> None:
    assert problems_of(**config) == [problem]


def test_a_config_given_on_its_own_names_its_path_too() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_approval_config({"timeout": "1h", "remind": ["half"]})
    assert caught.value.problems == [
        "approval_config.remind[0]: must be a share of the time to answer such as '50%', not 'half'"
    ]
