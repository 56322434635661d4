"""Slack: Block Kit approval messages with buttons, updated in place once decided.

The bot token comes from ``SLACK_BOT_TOKEN``; ``SLACK_API_URL`` points the
client elsewhere (tests use a loopback server). Recipients (emails or group
names) map to Slack user or channel ids through ``SLACK_USER_MAP`` (JSON),
the Settings page's ``user_map``, or ``users.lookupByEmail``.

The message shows the request as ``core.approvals.presentation`` defines it: the
guarded call's tool and each argument, the amount in figures and words, what
approving changes, the chain of levels, votes so far and time left (for a
gate without a call, its facts).

Buttons carry ``action_id`` ``countersign_approve`` / ``countersign_reject`` /
``countersign_edit``; their value names the approval, the level of the
request the message was sent for and the digest of the call it shows
(``button_value``), so a click decides only at that level and about that
call (core.approvals.once). The gateway's interactivity endpoint handles the clicks. Edit opens a modal
(``edit_modal``) whose inputs are drawn from the call's input schema,
pre-filled with the arguments now, plus an approved-amount input for a
budget; its ``view_submission`` is read back by ``read_edit_submission``.

Agent-written text is inert: in mrkdwn, ``&``, ``<`` and ``>`` are escaped
(no links, mentions or commands), mrkdwn's formatting characters are split
by zero-width spaces, a line cannot open a quote, and texts are ``verbatim``
(no auto-linking); argument values are ``plain_text``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
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

from core.approvals.edits import (
    AMOUNT,
    BOOLEAN,
    CHOICE,
    GENERAL,
    INTEGER,
    NUMBER,
    ArgumentField,
    argument_fields,
    editable,
)
from core.approvals.links import approval_link
from core.approvals.once import ANY
from core.approvals.presentation import RequestView, plain
from core.approvals.reminders import is_reminder_kind
from core.base.secrets import mask, secret
from core.base.storable import load_json
from core.channels.alerts import ALERT_KIND, alert_blocks, alert_facts, alert_text
from core.channels.base import (
    ApprovalFacts,
    Deferred,
    Delivery,
    PermanentFailure,
    TemporaryFailure,
)
from core.channels.slack_allow import (
    ALLOW_BLOCK,
    ALLOW_BLOCK_IDS,
    ALLOW_DAYS_BLOCK,
    ALLOW_WHEN_BLOCK,
    AllowAnswer,
    allow_blocks,
    read_allow,
)
from core.channels.text import SLACK_OPEN_ACTION, mrkdwn_escape
from core.channels.timers import reminder_notice
from core.outbox.settings import SLACK_TOKEN_ENV, slack_configured

TOKEN_ENV = SLACK_TOKEN_ENV
API_URL_ENV = "SLACK_API_URL"
USER_MAP_ENV = "SLACK_USER_MAP"
DEFAULT_API_URL = "https://slack.com/api/"
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
# Errors that retrying cannot fix.
PERMANENT_ERRORS = {
    "users_not_found",
    "user_not_found",
    "channel_not_found",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "not_in_channel",
    "invalid_blocks",
    "invalid_arguments",
    "msg_too_long",
    "no_permission",
}
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


def _inert_cut(text: str, limit: int) -> str:
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


def _md(text: str) -> MarkdownTextObject:
    """A mrkdwn text object that Slack does not auto-link (our own markup only)."""
    return MarkdownTextObject(text=text, verbatim=True)


def _cut(text: str, limit: int) -> str:
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
        _md(_cut(f"*{_inert_cut(label, 200)}*\n{_inert_cut(value, FIELD_TEXT_MAX - 210)}", FIELD_TEXT_MAX))
        for label, value in pairs
    ]
    return [SectionBlock(fields=fields[i : i + MAX_FIELDS]) for i in range(0, len(fields), MAX_FIELDS)]


def call_blocks(view: RequestView, *, facts: bool = True) -> list[Block]:
    """The request as the view shows it: call table, amount in words, changes, facts
    (unless shown with the key facts), chain of levels, votes and time left."""
    blocks: list[Block] = []
    if view.tool is not None:
        blocks.append(SectionBlock(text=_md(f"*Call:* {_inert_cut(view.tool, 500)}")))
        rows = view.arguments[:MAX_ARGUMENT_ROWS]
        fields: list[MarkdownTextObject | PlainTextObject] = []
        for row in rows:
            shown = _cut(plain(row.now), VALUE_SHOWN_MAX)
            if row.changed:
                shown += f"\n(was {_cut(plain(row.proposed), VALUE_SHOWN_MAX)})"
            fields.append(_md(f"*{_inert_cut(row.name, 200)}*"))
            fields.append(PlainTextObject(text=shown or " ", emoji=False))
        blocks += [SectionBlock(fields=fields[i : i + MAX_FIELDS]) for i in range(0, len(fields), MAX_FIELDS)]
        if len(view.arguments) > MAX_ARGUMENT_ROWS:
            blocks.append(
                ContextBlock(
                    elements=[
                        _md(
                            f"{len(view.arguments) - MAX_ARGUMENT_ROWS} more arguments: open the request "
                            "in the dashboard to see them all."
                        )
                    ]
                )
            )
    if view.amount_text:
        blocks.append(SectionBlock(text=_md(f"*Amount:* {_inert_cut(view.amount_text, 1000)}")))
    if view.changes:
        lines = [
            f"• {change['argument']}: {_cut(plain(change['before']), 300)} → "
            f"{_cut(plain(change['after']), 300)}"
            for change in view.changes
        ]
        heading = (
            "*Approving releases these changes:*"
            if view.status == "pending"
            else "*Released with these changes:*"
        )
        blocks.append(
            SectionBlock(
                text=_md(heading + "\n" + _inert_cut("\n".join(lines), SECTION_TEXT_MAX - len(heading) - 1))
            )
        )
    if facts and view.facts:
        blocks += _fields_section([(label, plain(value)) for label, value in view.facts][:MAX_FIELDS])
    status = (
        f"Approvers: {view.chain} · Votes: {view.approvals_so_far} of {view.threshold} "
        f"needed · Time left: {view.time_left}"
    )
    blocks.append(ContextBlock(elements=[_md(_inert_cut(status, CONTEXT_TEXT_MAX))]))
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
            text=PlainTextObject(text=_cut(approval.title or "Approval needed", HEADER_MAX), emoji=False)
        ),
    ]
    veto = approval.view.notice if approval.view is not None and outcome is None else None
    for notice in (reminder, veto):
        if notice:
            blocks.append(SectionBlock(text=_md(f":alarm_clock: *{_inert_cut(notice, 500)}*")))
    if approval.description:
        blocks.append(SectionBlock(text=_md(_inert_cut(approval.description, SECTION_TEXT_MAX))))
    blocks += _fields_section(_key_facts(approval)[:MAX_FIELDS])
    # A request opened with a proposed action but no guarded call (the API's) shows the
    # action as the agent described it.
    action = approval.action_summary() if approval.view is None or approval.view.tool is None else ""
    if action:
        blocks.append(
            SectionBlock(text=_md("*Proposed action*\n" + _inert_cut(action, SECTION_TEXT_MAX - 20)))
        )
    if approval.view is not None:
        blocks += call_blocks(approval.view, facts=False)
    open_button = ButtonElement(
        text=PlainTextObject(text="Open in dashboard"), action_id=OPEN_ACTION, url=link, value=approval.id
    )
    if outcome is not None:
        who = f" by {inert(decided_by)}" if decided_by else ""
        label = OUTCOME_LABELS.get(outcome, inert(outcome.capitalize()))
        blocks.append(ContextBlock(elements=[_md(_cut(f"{label}{who}", SECTION_TEXT_MAX))]))
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
        text=PlainTextObject(text=_cut(f"The workflow will not perform: {approval.title}", 300), emoji=False),
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


# -- the edit modal -------------------------------------------------------------------


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
                "text": {"type": "plain_text", "text": _cut(shown, OPTION_TEXT_MAX) or " ", "emoji": False},
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
    blocks.append({"type": "section", "text": _md(_inert_cut(about, 500)).to_dict()})
    if view.tool is not None:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    _md(
                        _inert_cut(
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
                "text": _cut(entry.label, LABEL_MAX) or entry.name,
                "emoji": False,
            },
        }
        hint = entry.description + (
            " (JSON)" if entry.kind not in ("string", NUMBER, INTEGER, CHOICE, BOOLEAN) else ""
        )
        if hint.strip():
            block["hint"] = {"type": "plain_text", "text": _cut(hint.strip(), HINT_MAX), "emoji": False}
        blocks.append(block)
    if skipped:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    _md(
                        _inert_cut(
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
                    "text": f"Approved amount ({_cut(view.currency, 20)})",
                    "emoji": False,
                },
                "hint": {
                    "type": "plain_text",
                    "emoji": False,
                    "text": _cut(f"At most {view.amount_text}. Lower it to approve less.", HINT_MAX),
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
        errors[block] = _cut(f"{errors[block]}; {text}" if block in errors else text, 2000)
    return errors


def fallback_text(approval: ApprovalFacts, outcome: str | None = None) -> str:
    if outcome:
        return escape(f"{approval.title}: {outcome}")
    return escape(f"Approval needed: {approval.title}")


def _user_map(settings: dict[str, Any]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    raw = secret(USER_MAP_ENV) or ""
    if raw:
        try:
            loaded = json.loads(raw)
        except ValueError as exc:
            raise PermanentFailure(f"{USER_MAP_ENV} is not valid JSON: {exc}") from exc
        if isinstance(loaded, dict):
            mapping.update({str(k).lower(): str(v) for k, v in loaded.items()})
    configured = settings.get("user_map")
    if isinstance(configured, dict):
        mapping.update({str(k).lower(): str(v) for k, v in configured.items()})
    return mapping


class SlackChannel:
    name = "slack"

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self._resolved: dict[str, str] = {}

    def _client(self) -> WebClient:
        token = secret(TOKEN_ENV)
        if not token:
            raise PermanentFailure(f"Slack is not configured: set {TOKEN_ENV}.")
        base_url = os.environ.get(API_URL_ENV) or DEFAULT_API_URL
        if not base_url.endswith("/"):
            base_url += "/"
        return WebClient(token=token, base_url=base_url, timeout=15)

    def configured(self) -> bool:
        return slack_configured()

    def status(self) -> dict[str, Any]:
        return {
            "channel": self.name,
            "configured": self.configured(),
            TOKEN_ENV: mask(secret(TOKEN_ENV)),
            API_URL_ENV: os.environ.get(API_URL_ENV) or DEFAULT_API_URL,
            "mapped_recipients": sorted(_user_map(self.settings)),
        }

    def destination(self, client: WebClient, recipient: str) -> str:
        """The Slack user or channel id for a recipient."""
        key = recipient.strip().lower()
        mapped = _user_map(self.settings).get(key)
        if mapped:
            return mapped
        if key in self._resolved:
            return self._resolved[key]
        if "@" not in key:
            raise PermanentFailure(
                f"No Slack destination for {recipient!r}: add it to {USER_MAP_ENV} or the Slack settings."
            )
        try:
            found = client.users_lookupByEmail(email=key)
        except SlackApiError as exc:
            raise _failure(exc, f"looking up {recipient}") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        user_id = str((found.get("user") or {}).get("id") or "")
        if not user_id:
            raise PermanentFailure(f"Slack has no user with the email {recipient}.")
        self._resolved[key] = user_id
        return user_id

    def send(self, delivery: Delivery) -> dict[str, Any]:

        if delivery.kind == ALERT_KIND:
            return self._post_alert(delivery)
        approval = delivery.approval
        if approval is None:
            raise PermanentFailure("Slack messages are only sent for approval requests.")
        client = self._client()
        if delivery.kind == "approval.decided":
            return self._update(client, delivery, approval)
        if is_reminder_kind(delivery.kind):  # the message sent earlier, updated in place
            if not approval.is_open:
                return {"skipped": f"approval already {approval.status}"}
            blocks = approval_blocks(approval, reminder=reminder_notice(delivery.payload))
            return {
                "updated": self._update_refs(client, delivery.prior_refs, blocks, fallback_text(approval))
            }
        if not approval.is_open:
            return {"skipped": f"approval already {approval.status}"}
        destination = self.destination(client, delivery.recipient)
        blocks = approval_blocks(approval)
        try:
            response = client.chat_postMessage(
                channel=destination,
                text=fallback_text(approval),
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": METADATA_EVENT,
                    "event_payload": {
                        "notification_id": delivery.notification_id,
                        "approval_id": approval.id,
                    },
                },
            )
        except SlackApiError as exc:
            raise _failure(exc, "posting the message") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        return {"channel": str(response.get("channel") or destination), "ts": str(response.get("ts") or "")}

    def _post_alert(self, delivery: Delivery) -> dict[str, Any]:

        facts = alert_facts(delivery)
        client = self._client()
        destination = self.destination(client, delivery.recipient)
        try:
            response = client.chat_postMessage(
                channel=destination,
                text=alert_text(facts),
                blocks=alert_blocks(facts),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise _failure(exc, "posting the alert") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        return {"channel": str(response.get("channel") or destination), "ts": str(response.get("ts") or "")}

    def _update(self, client: WebClient, delivery: Delivery, approval: ApprovalFacts) -> dict[str, Any]:
        outcome = str(delivery.payload.get("outcome") or approval.status)
        decided_by = delivery.payload.get("decided_by") or approval.decided_by
        blocks = approval_blocks(approval, outcome=outcome, decided_by=decided_by)
        return {
            "updated": self._update_refs(
                client, delivery.prior_refs, blocks, fallback_text(approval, outcome)
            )
        }

    def _update_refs(
        self, client: WebClient, refs: list[dict[str, Any]], blocks: list[Block], text: str
    ) -> list[dict[str, str]]:
        """``chat.update`` every message in ``refs``; those updated."""
        updated = []
        for ref in refs:
            if not ref.get("channel") or not ref.get("ts"):
                continue
            try:
                client.chat_update(channel=ref["channel"], ts=ref["ts"], blocks=blocks, text=text)
            except SlackApiError as exc:
                if exc.response.get("error") in ("message_not_found", "cant_update_message"):
                    continue  # deleted by someone in Slack; nothing to update
                raise _failure(exc, "updating the message") from exc
            except (SlackClientError, OSError) as exc:
                raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
            updated.append({"channel": ref["channel"], "ts": ref["ts"]})
        return updated

    def test(self, recipient: str) -> dict[str, Any]:
        client = self._client()
        destination = self.destination(client, recipient)
        try:
            response = client.chat_postMessage(
                channel=destination, text="Countersign test message: Slack delivery works."
            )
        except SlackApiError as exc:
            raise _failure(exc, "sending the test message") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        return {"channel": response.get("channel"), "ts": response.get("ts")}


def _failure(exc: SlackApiError, doing: str) -> Exception:
    error = str(exc.response.get("error") or "unknown_error")
    message = f"Slack refused {doing}: {error}"
    if error == "ratelimited":
        return TemporaryFailure(message)
    if error in PERMANENT_ERRORS:
        return PermanentFailure(message)
    return TemporaryFailure(message)


__all__ = [
    "SlackChannel",
    "approval_blocks",
    "escape",
    "inert",
    "edit_modal",
    "read_edit_submission",
    "button_value",
    "read_button_value",
    "ButtonValue",
    "submission_errors",
    "EditSubmission",
    "APPROVE_ACTION",
    "REJECT_ACTION",
    "EDIT_ACTION",
    "EDIT_CALLBACK",
    "Deferred",
]
