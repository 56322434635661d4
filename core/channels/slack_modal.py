"""Slack's Edit modal: inputs drawn from the guarded call's input schema,
pre-filled with the arguments now, plus an approved-amount input for a budget
and the "allow calls like this" blocks (``core.channels.slack_allow``); its
``view_submission`` read back (``read_edit_submission``) and the engine's
problems mapped onto the inputs that caused them (``submission_errors``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.approvals.edits import (
    AMOUNT,
    BOOLEAN,
    CHOICE,
    GENERAL,
    INTEGER,
    NUMBER,
    ArgumentField,
    argument_fields,
)
from core.approvals.presentation import RequestView
from core.base.storable import load_json
from core.channels.base import PermanentFailure
from core.channels.slack_allow import (
    ALLOW_BLOCK,
    ALLOW_BLOCK_IDS,
    ALLOW_DAYS_BLOCK,
    ALLOW_WHEN_BLOCK,
    AllowAnswer,
    allow_blocks,
    read_allow,
)
from core.channels.slack_blocks import (
    AMOUNT_BLOCK,
    ARGUMENT_BLOCK,
    BLOCK_ID_MAX,
    COMMENT_BLOCK,
    EDIT_CALLBACK,
    HINT_MAX,
    INPUT_ACTION,
    INPUT_VALUE_MAX,
    LABEL_MAX,
    METADATA_MAX,
    MODAL_MAX_BLOCKS,
    MODAL_TITLE_MAX,
    OPTION_TEXT_MAX,
    OPTION_VALUE_MAX,
    cut,
    inert_cut,
    md_text,
)

__all__ = [
    "ALLOW_PROBLEM_BLOCKS",
    "EditSubmission",
    "edit_modal",
    "read_edit_submission",
    "submission_errors",
]


def _input_element(entry: ArgumentField) -> dict[str, Any] | None:
    """A Block Kit input pre-filled with the argument's value now (None: too long for Slack)."""
    if entry.text is not None and len(entry.text) > INPUT_VALUE_MAX:
        return None
    if entry.kind in (NUMBER, INTEGER):
        element: dict[str, Any] = {
            "type": "number_input",
            "action_id": INPUT_ACTION,
            "is_decimal_allowed": entry.kind == NUMBER,
        }
        if entry.text is not None:
            element["initial_value"] = entry.text
        return element
    if entry.kind in (CHOICE, BOOLEAN) and all(len(v) <= OPTION_VALUE_MAX for _, v in entry.options):
        options = [
            {
                "text": {"type": "plain_text", "text": cut(shown, OPTION_TEXT_MAX) or " ", "emoji": False},
                "value": value,
            }
            for shown, value in entry.options
        ]
        element = {"type": "static_select", "action_id": INPUT_ACTION, "options": options}
        initial = [
            o
            for o, (_, v) in zip(options, entry.options, strict=True)
            if entry.text is not None and v == entry.text
        ]
        if initial:
            element["initial_option"] = initial[0]
        return element
    element = {"type": "plain_text_input", "action_id": INPUT_ACTION, "multiline": entry.multiline}
    if entry.text:
        element["initial_value"] = entry.text
    return element


def edit_modal(
    approval_id: str,
    view: RequestView,
    title: str = "",
    *,
    level: int | None = None,
    allow_hint: str | None = None,
) -> dict[str, Any]:
    """The modal an approver edits the call (and a budget's amount) in, as ``views.open``
    takes it. ``private_metadata`` names the request, its level and the digest of the
    call shown, so a submission about a call or level that has moved on since is refused.
    ``allow_hint`` (``standing_rules.allow_offer``): also offer "approve, and allow calls
    like this" (core.channels.slack_allow)."""
    blocks: list[dict[str, Any]] = []
    reserved = 4 + (len(ALLOW_BLOCK_IDS) if allow_hint is not None else 0)
    about = title or view.title
    blocks.append({"type": "section", "text": md_text(inert_cut(about, 500)).to_dict()})
    if view.tool is not None:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    md_text(
                        inert_cut(
                            f"Edit the call to {view.tool}. Approving releases it as you leave it here; "
                            "an argument you do not change keeps its value.",
                            1000,
                        )
                    ).to_dict()
                ],
            }
        )
    skipped = []
    for entry in argument_fields(view):
        element = _input_element(entry)
        block_id = ARGUMENT_BLOCK + entry.name
        if element is None or len(block_id) > BLOCK_ID_MAX or len(blocks) >= MODAL_MAX_BLOCKS - reserved:
            skipped.append(entry.name)
            continue
        block: dict[str, Any] = {
            "type": "input",
            "block_id": block_id,
            "element": element,
            # Strings may be emptied; other inputs come pre-filled.
            "optional": entry.kind not in (NUMBER, INTEGER, CHOICE, BOOLEAN) or entry.text is None,
            "label": {
                "type": "plain_text",
                "text": cut(entry.label, LABEL_MAX) or entry.name,
                "emoji": False,
            },
        }
        hint = entry.description + (
            " (JSON)" if entry.kind not in ("string", NUMBER, INTEGER, CHOICE, BOOLEAN) else ""
        )
        if hint.strip():
            block["hint"] = {"type": "plain_text", "text": cut(hint.strip(), HINT_MAX), "emoji": False}
        blocks.append(block)
    if skipped:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    md_text(
                        inert_cut(
                            "Not editable here (too long): "
                            + ", ".join(skipped)
                            + ". They keep their value; "
                            "edit them in the dashboard.",
                            1000,
                        )
                    ).to_dict()
                ],
            }
        )
    if view.approval_type == "budget" and view.amount is not None:
        amount = int(view.amount) if float(view.amount).is_integer() else view.amount
        blocks.append(
            {
                "type": "input",
                "block_id": AMOUNT_BLOCK,
                "optional": False,
                "label": {
                    "type": "plain_text",
                    "text": f"Approved amount ({cut(view.currency, 20)})",
                    "emoji": False,
                },
                "hint": {
                    "type": "plain_text",
                    "emoji": False,
                    "text": cut(f"At most {view.amount_text}. Lower it to approve less.", HINT_MAX),
                },
                "element": {
                    "type": "number_input",
                    "action_id": INPUT_ACTION,
                    "is_decimal_allowed": True,
                    "initial_value": str(amount),
                    "max_value": str(amount),
                },
            }
        )
    if allow_hint is not None:
        blocks.extend(allow_blocks(allow_hint, INPUT_ACTION))
    blocks.append(
        {
            "type": "input",
            "block_id": COMMENT_BLOCK,
            "optional": True,
            "label": {"type": "plain_text", "text": "Comment", "emoji": False},
            "element": {"type": "plain_text_input", "action_id": INPUT_ACTION, "multiline": True},
        }
    )
    metadata = json.dumps(
        {
            "approval_id": approval_id,
            "level": level,
            "digest": (view.call_now or {}).get("digest"),
            "tool": view.tool,
        }
    )
    if len(metadata) > METADATA_MAX:  # a tool name that long is not a real one
        raise PermanentFailure("The request cannot be edited in Slack; use the dashboard.")
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK,
        "title": {"type": "plain_text", "text": "Edit and approve"[:MODAL_TITLE_MAX]},
        "submit": {"type": "plain_text", "text": "Approve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": metadata,
        "blocks": blocks,
    }


@dataclass(frozen=True)
class EditSubmission:
    """What a modal's ``view_submission`` says."""

    approval_id: str
    digest: str | None
    tool: str | None
    # Argument name -> text left in its input (None: empty).
    inputs: dict[str, str | None]
    amount: str | None
    comment: str
    # Input block ids in the order shown (where refusals are reported).
    block_ids: list[str]
    # The level of the request the modal was opened at (None: not named).
    level: int | None = None
    # "Approve, and allow calls like this", when offered and ticked.
    allow: AllowAnswer | None = None


def _state_text(state: Any) -> str | None:
    if not isinstance(state, dict):
        return None
    if isinstance(state.get("selected_option"), dict):
        value = state["selected_option"].get("value")
        return None if value is None else str(value)
    value = state.get("value")
    return None if value is None else str(value)


def read_edit_submission(view: dict[str, Any]) -> EditSubmission:
    """The approval, the call digest it was opened on, and the inputs, from a submitted
    modal. Raises ``ValueError`` for a view that is not the edit modal."""
    if view.get("callback_id") != EDIT_CALLBACK:
        raise ValueError("not the Countersign edit modal")
    raw = view.get("private_metadata")
    try:
        metadata = load_json(raw if isinstance(raw, str) else "", "private_metadata")
    except ValueError:
        raise ValueError("the modal's metadata is not JSON") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("approval_id"), str):
        raise ValueError("the modal does not name a request")
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    values = values if isinstance(values, dict) else {}
    inputs: dict[str, str | None] = {}
    amount: str | None = None
    comment = ""
    for block_id, actions in values.items():
        block_id = str(block_id)
        text = _state_text((actions or {}).get(INPUT_ACTION) if isinstance(actions, dict) else None)
        if block_id.startswith(ARGUMENT_BLOCK):
            inputs[block_id[len(ARGUMENT_BLOCK) :]] = text
        elif block_id == AMOUNT_BLOCK:
            amount = text
        elif block_id == COMMENT_BLOCK:
            comment = text or ""
    listed = view.get("blocks")
    shown = [
        b.get("block_id")
        for b in (listed if isinstance(listed, list) else [])
        if isinstance(b, dict) and b.get("type") == "input"
    ]
    block_ids = [str(b) for b in shown if b] or [str(b) for b in values]
    tool, digest, level = metadata.get("tool"), metadata.get("digest"), metadata.get("level")
    return EditSubmission(
        approval_id=metadata["approval_id"],
        digest=digest if isinstance(digest, str) else None,
        tool=tool if isinstance(tool, str) else None,
        inputs=inputs,
        amount=amount,
        comment=comment,
        block_ids=block_ids,
        level=level if isinstance(level, int) and not isinstance(level, bool) and level >= 0 else None,
        allow=read_allow(values, INPUT_ACTION),
    )


# A refused standing rule's problems, by the field they name, under its input.
ALLOW_PROBLEM_BLOCKS = {
    "allow": ALLOW_BLOCK,
    "allow_for_days": ALLOW_DAYS_BLOCK,
    "allow_when": ALLOW_WHEN_BLOCK,
}


def submission_errors(problems: dict[str, list[str]], block_ids: list[str]) -> dict[str, str]:
    """``response_action: errors``: each refusal under the input it names (an argument's,
    the approved amount's, the standing rule's), the rest under the first input."""
    errors: dict[str, str] = {}
    first = next((b for b in block_ids if b != COMMENT_BLOCK), block_ids[0] if block_ids else COMMENT_BLOCK)
    for key, messages in problems.items():
        block = ALLOW_PROBLEM_BLOCKS.get(key) or (
            AMOUNT_BLOCK if key == AMOUNT else ARGUMENT_BLOCK + key if key != GENERAL else first
        )
        if block not in block_ids:
            block = first
            messages = [f"{key}: {m}" if key not in (GENERAL, AMOUNT) else m for m in messages]
        text = "; ".join(messages)
        errors[block] = cut(f"{errors[block]}; {text}" if block in errors else text, 2000)
    return errors
