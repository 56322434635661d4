"""Slack's Block Kit approval message: the request as
``core.approvals.presentation`` defines it (the guarded call's tool and each
argument, the amount in figures and words, what approving changes, the chain of
levels, votes so far and time left), its buttons and their values, and the
block and action ids and Slack's size limits every Slack message here keeps to.

Buttons carry ``action_id`` ``countersign_approve`` / ``countersign_reject`` /
``countersign_edit``; their value names the approval, the level of the
request the message was sent for and the digest of the call it shows
(``button_value``), so a click decides only at that level and about that
call (core.approvals.once).

Agent-written text is inert: in mrkdwn, ``&``, ``<`` and ``>`` are escaped
(no links, mentions or commands), mrkdwn's formatting characters are split
by zero-width spaces, a line cannot open a quote, and texts are ``verbatim``
(no auto-linking); argument values are ``plain_text``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from core.approvals.edits import editable
from core.approvals.links import approval_link
from core.approvals.once import ANY
from core.approvals.presentation import RequestView, plain
from core.base.storable import load_json
from core.channels.base import ApprovalFacts
from core.channels.text import SLACK_OPEN_ACTION, mrkdwn_escape

__all__ = [
    "APPROVE_ACTION",
    "REJECT_ACTION",
    "OPEN_ACTION",
    "EDIT_ACTION",
    "EDIT_CALLBACK",
    "ARGUMENT_BLOCK",
    "AMOUNT_BLOCK",
    "COMMENT_BLOCK",
    "INPUT_ACTION",
    "ACTIONS_BLOCK_ID",
    "METADATA_EVENT",
    "ButtonValue",
    "OUTCOME_LABELS",
    "approval_blocks",
    "button_value",
    "call_blocks",
    "cut",
    "escape",
    "fallback_text",
    "inert",
    "inert_cut",
    "md_text",
    "read_button_value",
    "HEADER_MAX",
    "SECTION_TEXT_MAX",
    "FIELD_TEXT_MAX",
    "MAX_FIELDS",
    "CONTEXT_TEXT_MAX",
    "MAX_ARGUMENT_ROWS",
    "VALUE_SHOWN_MAX",
    "MODAL_TITLE_MAX",
    "MODAL_MAX_BLOCKS",
    "INPUT_VALUE_MAX",
    "LABEL_MAX",
    "HINT_MAX",
    "BLOCK_ID_MAX",
    "OPTION_TEXT_MAX",
    "OPTION_VALUE_MAX",
    "METADATA_MAX",
]


APPROVE_ACTION = "countersign_approve"


REJECT_ACTION = "countersign_reject"


OPEN_ACTION = SLACK_OPEN_ACTION


EDIT_ACTION = "countersign_edit"


# The edit modal: its callback id, input blocks and the action id of every input.
EDIT_CALLBACK = "countersign_edit"


ARGUMENT_BLOCK = "countersign_arg:"


AMOUNT_BLOCK = "countersign_amount"


COMMENT_BLOCK = "countersign_comment"


INPUT_ACTION = "value"


ACTIONS_BLOCK_ID = "countersign_actions"


METADATA_EVENT = "countersign_approval"


# Block Kit limits.
HEADER_MAX = 150


SECTION_TEXT_MAX = 3000


FIELD_TEXT_MAX = 2000


MAX_FIELDS = 10


CONTEXT_TEXT_MAX = 3000


MAX_ARGUMENT_ROWS = 20


VALUE_SHOWN_MAX = 600


# Modal limits.
MODAL_TITLE_MAX = 24


MODAL_MAX_BLOCKS = 100


INPUT_VALUE_MAX = 3000


LABEL_MAX = 2000


HINT_MAX = 2000


BLOCK_ID_MAX = 255


OPTION_TEXT_MAX = 75


OPTION_VALUE_MAX = 150


METADATA_MAX = 3000


OUTCOME_LABELS = {
    "approved": ":white_check_mark: Approved",
    "modified": ":white_check_mark: Approved with changes",
    "rejected": ":x: Rejected",
    "expired": ":hourglass: Expired",
    "cancelled": ":no_entry_sign: Cancelled",
}


escape = mrkdwn_escape


_MARKERS = "*_~`"


_ZWSP = "\u200b"


def inert(text: str) -> str:
    """Agent text as inert mrkdwn: no links, mentions or commands (``&<>`` escaped), no
    formatting (each of ``*_~``` between zero-width spaces, so it neither opens nor
    closes one), no quote at the start of a line."""
    text = escape(text)
    for marker in _MARKERS:
        text = text.replace(marker, f"{_ZWSP}{marker}{_ZWSP}")
    return "\n".join(_ZWSP + line if line.startswith("&gt;") else line for line in text.split("\n"))


def inert_cut(text: str, limit: int) -> str:
    """``inert(text)`` within ``limit`` characters, never cutting an escape in two."""
    shown = inert(text)
    if len(shown) <= limit:
        return shown
    low, high = 0, len(text)
    while low < high:  # the longest prefix whose inert form fits with the ellipsis
        middle = (low + high + 1) // 2
        if len(inert(text[:middle])) <= limit - 1:
            low = middle
        else:
            high = middle - 1
    return inert(text[:low]) + "…"


@dataclass(frozen=True)
class ButtonValue:
    """What an Approve, Reject or Edit button was sent for."""

    approval_id: str
    level: int
    # The digest of the call the message showed; ``core.approvals.once.ANY`` when it showed none
    # it could name.
    digest: Any = ANY


BUTTON_VALUE_MAX = 2000


def button_value(approval: ApprovalFacts) -> str:
    """A button's value: the approval, its level now and the call's digest (JSON)."""
    value: dict[str, Any] = {"approval_id": approval.id, "level": approval.level}
    if approval.view is not None:
        value["digest"] = (approval.view.call_now or {}).get("digest")
    return json.dumps(value, separators=(",", ":"))


def read_button_value(value: Any) -> ButtonValue:
    """A button's value read back; ``ValueError`` for one that names no level (a message
    sent before buttons carried one) or is not ours."""
    if not isinstance(value, str) or not value or len(value) > BUTTON_VALUE_MAX:
        raise ValueError("the button names no request")
    try:
        loaded = load_json(value, "value")
    except ValueError:
        raise ValueError("the button names no level of the request") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("approval_id"), str):
        raise ValueError("the button names no request")
    level = loaded.get("level")
    if not isinstance(level, int) or isinstance(level, bool) or level < 0:
        raise ValueError("the button names no level of the request")
    digest = loaded.get("digest", ANY)
    if digest is not ANY and digest is not None and not isinstance(digest, str):
        raise ValueError("the button's call digest is not text")
    return ButtonValue(loaded["approval_id"], level, digest)


def md_text(text: str) -> MarkdownTextObject:
    """A mrkdwn text object that Slack does not auto-link (our own markup only)."""
    return MarkdownTextObject(text=text, verbatim=True)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _key_facts(approval: ApprovalFacts) -> list[tuple[str, str]]:
    """Workflow, step, type, requester, deadline; with a view, the context's facts are
    the view's (a budget's amount is shown in words instead)."""
    if approval.view is None:
        return approval.key_facts()
    facts = [
        (label, value)
        for label, value in approval.key_facts()
        if label in ("Workflow", "Step", "Type", "Requested by", "Answer by")
    ]
    return facts + [(label, plain(value)) for label, value in approval.view.facts]


def _fields_section(pairs: list[tuple[str, str]]) -> list[Block]:
    fields = [
        md_text(cut(f"*{inert_cut(label, 200)}*\n{inert_cut(value, FIELD_TEXT_MAX - 210)}", FIELD_TEXT_MAX))
        for label, value in pairs
    ]
    return [SectionBlock(fields=fields[i : i + MAX_FIELDS]) for i in range(0, len(fields), MAX_FIELDS)]


def call_blocks(view: RequestView, *, facts: bool = True) -> list[Block]:
    """The request as the view shows it: call table, amount in words, changes, facts
    (unless shown with the key facts), chain of levels, votes and time left."""
    blocks: list[Block] = []
    if view.tool is not None:
        blocks.append(SectionBlock(text=md_text(f"*Call:* {inert_cut(view.tool, 500)}")))
        rows = view.arguments[:MAX_ARGUMENT_ROWS]
        fields: list[MarkdownTextObject | PlainTextObject] = []
        for row in rows:
            shown = cut(plain(row.now), VALUE_SHOWN_MAX)
            if row.changed:
                shown += f"\n(was {cut(plain(row.proposed), VALUE_SHOWN_MAX)})"
            fields.append(md_text(f"*{inert_cut(row.name, 200)}*"))
            fields.append(PlainTextObject(text=shown or " ", emoji=False))
        blocks += [SectionBlock(fields=fields[i : i + MAX_FIELDS]) for i in range(0, len(fields), MAX_FIELDS)]
        if len(view.arguments) > MAX_ARGUMENT_ROWS:
            blocks.append(
                ContextBlock(
                    elements=[
                        md_text(
                            f"{len(view.arguments) - MAX_ARGUMENT_ROWS} more arguments: open the request "
                            "in the dashboard to see them all."
                        )
                    ]
                )
            )
    if view.amount_text:
        blocks.append(SectionBlock(text=md_text(f"*Amount:* {inert_cut(view.amount_text, 1000)}")))
    if view.changes:
        lines = [
            f"• {change['argument']}: {cut(plain(change['before']), 300)} → "
            f"{cut(plain(change['after']), 300)}"
            for change in view.changes
        ]
        heading = (
            "*Approving releases these changes:*"
            if view.status == "pending"
            else "*Released with these changes:*"
        )
        blocks.append(
            SectionBlock(
                text=md_text(
                    heading + "\n" + inert_cut("\n".join(lines), SECTION_TEXT_MAX - len(heading) - 1)
                )
            )
        )
    if facts and view.facts:
        blocks += _fields_section([(label, plain(value)) for label, value in view.facts][:MAX_FIELDS])
    status = (
        f"Approvers: {view.chain} · Votes: {view.approvals_so_far} of {view.threshold} "
        f"needed · {view.time_left}"
    )
    blocks.append(ContextBlock(elements=[md_text(inert_cut(status, CONTEXT_TEXT_MAX))]))
    return blocks


def approval_blocks(
    approval: ApprovalFacts,
    *,
    outcome: str | None = None,
    decided_by: str | None = None,
    reminder: str | None = None,
) -> list[Block]:
    """The Block Kit message for an approval; without buttons once it is closed.

    ``reminder`` ("Reminder: 2h 10m left to answer") heads the message a reminder
    updates in place; a veto window's announcement says when the call runs."""
    link = approval_link(approval.id)
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(text=cut(approval.title or "Approval needed", HEADER_MAX), emoji=False)
        ),
    ]
    veto = approval.view.notice if approval.view is not None and outcome is None else None
    for notice in (reminder, veto):
        if notice:
            blocks.append(SectionBlock(text=md_text(f":alarm_clock: *{inert_cut(notice, 500)}*")))
    if approval.description:
        blocks.append(SectionBlock(text=md_text(inert_cut(approval.description, SECTION_TEXT_MAX))))
    blocks += _fields_section(_key_facts(approval)[:MAX_FIELDS])
    # A request opened with a proposed action but no guarded call (the API's) shows the
    # action as the agent described it.
    action = approval.action_summary() if approval.view is None or approval.view.tool is None else ""
    if action:
        blocks.append(
            SectionBlock(text=md_text("*Proposed action*\n" + inert_cut(action, SECTION_TEXT_MAX - 20)))
        )
    if approval.view is not None:
        blocks += call_blocks(approval.view, facts=False)
    open_button = ButtonElement(
        text=PlainTextObject(text="Open in dashboard"), action_id=OPEN_ACTION, url=link, value=approval.id
    )
    if outcome is not None:
        who = f" by {inert(decided_by)}" if decided_by else ""
        label = OUTCOME_LABELS.get(outcome, inert(outcome.capitalize()))
        blocks.append(ContextBlock(elements=[md_text(cut(f"{label}{who}", SECTION_TEXT_MAX))]))
        blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK_ID, elements=[open_button]))
        return blocks
    if approval.needs_dashboard:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(text="This request needs a form answer; open it in the dashboard.")
                ]
            )
        )
        blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK_ID, elements=[open_button]))
        return blocks
    reject_label = "Veto" if veto else "Reject"
    reject_confirm = ConfirmObject(
        title=f"{reject_label} this request?",
        # Plain text: a confirm dialog's text is mrkdwn by default, where an agent's
        # title could carry links (<https://...|text>) or mentions (<!channel>).
        text=PlainTextObject(text=cut(f"The workflow will not perform: {approval.title}", 300), emoji=False),
        confirm=reject_label,
        deny="Cancel",
        style="danger",
    )
    value = button_value(approval)
    buttons = [
        ButtonElement(
            text=PlainTextObject(text="Run now" if veto else "Approve"),
            action_id=APPROVE_ACTION,
            value=value,
            style="primary",
        ),
        ButtonElement(
            text=PlainTextObject(text=reject_label),
            action_id=REJECT_ACTION,
            value=value,
            style="danger",
            confirm=reject_confirm,
        ),
    ]
    if approval.view is not None and editable(approval.view):
        label = (
            "Edit or lower the amount"
            if approval.view.amount_argument or approval.view.tool is None
            else "Edit"
        )
        buttons.append(ButtonElement(text=PlainTextObject(text=label), action_id=EDIT_ACTION, value=value))
    blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK_ID, elements=[*buttons, open_button]))
    return blocks


def fallback_text(approval: ApprovalFacts, outcome: str | None = None) -> str:
    if outcome:
        return escape(f"{approval.title}: {outcome}")
    return escape(f"Approval needed: {approval.title}")
