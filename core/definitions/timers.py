"""Deadlines in an approval config: reminders (``remind: [50%, 90%]``), escalation
chains (``escalate_to: [manager, director, admins]``), the final expiry
(``on_expiry``) and veto windows (``mode: veto, window: 15m``). See docs/policy.md.

Refusals are ``"<field>|<message>"`` ValueErrors, which the definition loader turns
into a path: ``steps[2].approval_config.remind[1]: must be more than 0% ...``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, TypeAdapter, ValidationError

if TYPE_CHECKING:
    from core.definitions.approval import ApprovalConfig


def parse_share(value: Any) -> float:
    """A reminder's share of the time to answer: ``"50%"`` -> 50.0 (strictly between 0 and 100)."""
    text = value.strip() if isinstance(value, str) else None
    if text is None or not text.endswith("%"):
        raise ValueError(f"must be a share of the time to answer such as '50%', not {value!r}")
    try:
        share = float(text[:-1])
    except ValueError:
        raise ValueError(f"must be a share of the time to answer such as '50%', not {value!r}") from None
    if not math.isfinite(share) or not 0 < share < 100:
        raise ValueError("must be more than 0% and less than 100%")
    return share


def _escalation_levels(value: Any) -> Any:
    """``escalate_to``: one approver, or a chain of levels, each an approver or a list."""
    if isinstance(value, str):
        return [[value]]
    if isinstance(value, list):
        return [[item] if isinstance(item, str) else item for item in value]
    return value


EscalationChain = Annotated[
    list[Annotated[list[str], Field(min_length=1)]], BeforeValidator(_escalation_levels)
]
# Stored as written ("50%"), so a stored config reads back the same.
ReminderShare = Annotated[
    float, BeforeValidator(parse_share), PlainSerializer(lambda share: f"{share:g}%", when_used="json")
]


def apply_timer_rules(config: ApprovalConfig) -> None:
    """Check (and settle) the deadline fields of one config; raises ``"field|message"``."""
    given = config.model_fields_set
    if config.escalate_to and "on_timeout" not in given:
        config.on_timeout = "escalate"  # a chain escalates without saying so twice
    if config.escalate_to and config.on_timeout != "escalate":
        raise ValueError(
            f"escalate_to|is only used when on_timeout is escalate, and on_timeout is {config.on_timeout}"
        )
    if config.on_expiry is not None and config.on_timeout in ("reject", "approve"):
        if "on_timeout" not in given:
            config.on_timeout = config.on_expiry  # one meaning, stored once
        elif config.on_timeout != config.on_expiry:
            raise ValueError(
                f"on_expiry|{config.on_expiry} disagrees with on_timeout {config.on_timeout}; give one"
            )
    if config.mode == "veto":
        if config.window is None:
            raise ValueError("window|required when mode is veto (how long approvers have to veto, e.g. 15m)")
        stated = {
            "timeout": config.timeout is not None,
            "on_timeout": config.on_timeout != "reject",
            "escalate_to": bool(config.escalate_to),
            "on_expiry": config.on_expiry is not None,
            "levels": config.levels is not None,
        }
        for key in (k for k, present in stated.items() if present):
            raise ValueError(
                f"{key}|a veto window has no {key}: the call runs when the window ends unless someone vetoes"
            )
    elif config.window is not None:
        raise ValueError("window|only a veto (mode: veto) has a window; use timeout")
    if config.remind is not None:
        if config.deadline_seconds is None:
            raise ValueError("remind|needs a deadline to count from: set timeout (or a veto window)")
        seen: set[float] = set()
        for index, share in enumerate(config.remind):
            if share in seen:
                raise ValueError(f"remind[{index}]|{share:g}% is listed twice")
            seen.add(share)


def veto_refusals(config: Any) -> list[str]:
    """What a definition may not say of a veto window, as ``"field: message"`` (checked when a
    definition or a config is given, not on a stored one, which must keep loading: there a
    reject decides in a veto window whatever ``reject_decides`` says, core.approvals.voting)."""
    if not isinstance(config, dict) or config.get("mode") != "veto":
        return []
    try:  # as the config reads it: false, "no", "off", 0
        decides = TypeAdapter(bool).validate_python(config.get("reject_decides", True))
    except ValidationError:
        return []  # the config's own check names it
    if not decides:
        return ["reject_decides: cannot be false in a veto window: one veto (a reject) stops the call"]
    return []


__all__ = ["EscalationChain", "ReminderShare", "apply_timer_rules", "parse_share", "veto_refusals"]
