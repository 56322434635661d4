""" "Approve, and allow calls like this" in Slack's edit modal (core.channels.slack):
the blocks a policy manager is shown under the call, and what they submitted.

The modal carries them only when ``standing_rules.allow_offer`` says the
approver may make the rule; the submission is checked again by the engine
(``policies:manage``, a safe condition, at most ``MAX_DAYS``), which makes the
rule in the same transaction as the vote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.approvals.standing_rules import DEFAULT_CONDITION_WORDS, MAX_DAYS

ALLOW_BLOCK = "countersign_allow"
ALLOW_DAYS_BLOCK = "countersign_allow_days"
ALLOW_WHEN_BLOCK = "countersign_allow_when"
ALLOW_BLOCK_IDS = (ALLOW_BLOCK, ALLOW_DAYS_BLOCK, ALLOW_WHEN_BLOCK)
ALLOW_VALUE = "allow"
DEFAULT_ALLOW_DAYS = 7
# Slack's limits: a placeholder of 150 characters, a condition we store of 1,000.
PLACEHOLDER_MAX = 150
CONDITION_MAX = 1000


@dataclass(frozen=True)
class AllowAnswer:
    """What the approver asked for: days (the text left in the field) and condition."""

    days: str | None
    when: str | None


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def allow_blocks(hint: str, action_id: str) -> list[dict[str, Any]]:
    """The option, its days and its condition (``hint``: what "like this" means by default)."""
    placeholder = hint if len(hint) <= PLACEHOLDER_MAX else hint[: PLACEHOLDER_MAX - 1] + "…"
    return [
        {
            "type": "input",
            "block_id": ALLOW_BLOCK,
            "optional": True,
            "label": _plain("Standing rule"),
            "element": {
                "type": "checkboxes",
                "action_id": action_id,
                "options": [
                    {
                        "text": _plain("Approve, and allow calls like this for the days below"),
                        "value": ALLOW_VALUE,
                    }
                ],
            },
        },
        {
            "type": "input",
            "block_id": ALLOW_DAYS_BLOCK,
            "optional": True,
            "label": _plain("Days"),
            "element": {
                "type": "number_input",
                "action_id": action_id,
                "is_decimal_allowed": False,
                "initial_value": str(DEFAULT_ALLOW_DAYS),
                "min_value": "1",
                "max_value": str(MAX_DAYS),
            },
        },
        {
            "type": "input",
            "block_id": ALLOW_WHEN_BLOCK,
            "optional": True,
            "label": _plain("Calls like this: a condition on the arguments"),
            "hint": _plain(f"Empty: {DEFAULT_CONDITION_WORDS}."),
            "element": {
                "type": "plain_text_input",
                "action_id": action_id,
                "max_length": CONDITION_MAX,
                "placeholder": _plain(placeholder),
            },
        },
    ]


def read_allow(values: dict[str, Any], action_id: str) -> AllowAnswer | None:
    """The option as submitted (``view.state.values``): None unless it was ticked."""

    def state(block: str) -> dict[str, Any]:
        actions = values.get(block)
        found = actions.get(action_id) if isinstance(actions, dict) else None
        return found if isinstance(found, dict) else {}

    ticked = state(ALLOW_BLOCK).get("selected_options")
    if not isinstance(ticked, list) or not any(
        isinstance(o, dict) and o.get("value") == ALLOW_VALUE for o in ticked
    ):
        return None
    days, when = state(ALLOW_DAYS_BLOCK).get("value"), state(ALLOW_WHEN_BLOCK).get("value")
    return AllowAnswer(
        days=str(days) if isinstance(days, str | int | float) else None,
        when=when.strip() or None if isinstance(when, str) else None,
    )


__all__ = [
    "ALLOW_BLOCK",
    "ALLOW_BLOCK_IDS",
    "ALLOW_DAYS_BLOCK",
    "ALLOW_WHEN_BLOCK",
    "AllowAnswer",
    "allow_blocks",
    "read_allow",
]
