"""What an approver is shown: the one definition every channel draws from.

``request_view(approval, responses)`` turns a request and its votes into a
``RequestView``: the guarded call as a table of arguments (proposed, and as
released so far when an earlier level lowered or edited it), the amount in
figures and words, what approving will change (a before/after diff), the
chain of levels with who approved and who is still to, the threshold and the
votes so far, the time left, and, for a request that guards no call, the
facts it was opened with (its context and the ``approval_config.show``
values). The dashboard, the email page, Slack and Gradio render this; none
of them reads the request's JSON on its own.

Every value here may come from an agent: renderers treat them as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.approvals import who_answered
from core.approvals.engine import ApprovalEngine, current_call
from core.approvals.inbox import ApprovalDetail, time_left
from core.approvals.veto import veto_notice
from core.approvals.voting import changes_allowed
from core.approvals.who_answered import DECISION_WORDS, Outcome, plain
from core.definitions.approval import ApprovalConfig
from core.definitions.calls import DEFAULT_AMOUNT_ARGUMENT, call_diff
from core.store.tables import ApprovalRequest, ApprovalResponse

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_CURRENCY_WORDS = {
    "USD": ("US dollar", "US dollars", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("pound sterling", "pounds sterling", "penny", "pence"),
    "JPY": ("yen", "yen", "", ""),
    "CHF": ("Swiss franc", "Swiss francs", "centime", "centimes"),
}


def needs_fields(approval_type: str, response_schema: dict[str, Any] | None) -> bool:
    """Whether answering needs fields a button cannot give: a form, or an answer schema
    requiring more than the amount (which confirmation pages and Slack's modal ask for).
    The one definition: the channels' messages and the email pages ask it."""
    required = set((response_schema or {}).get("required") or [])
    return approval_type == "form" or bool(required - {"amount"})


def _words(number: int) -> str:
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {_words(rest)}" if rest else "")
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return f"{_words(high)} {name}" + (f" {_words(rest)}" if rest else "")
    return str(number)  # unreachable


def amount_in_words(amount: float, currency: str) -> str:
    """``12500, "USD"`` -> "twelve thousand five hundred US dollars"."""
    whole = int(abs(amount))
    cents = round((abs(amount) - whole) * 100)
    if cents == 100:
        whole, cents = whole + 1, 0
    one, many, minor, minors = _CURRENCY_WORDS.get(currency.upper(), (currency, currency, "", ""))
    text = f"{_words(whole)} {one if whole == 1 else many}"
    if cents and minor:
        text += f" and {_words(cents)} {minor if cents == 1 else minors}"
    elif cents:
        text += f" and {cents}/100"
    return ("minus " if amount < 0 else "") + text


def amount_text(amount: float, currency: str) -> str:
    """ "12,500.00 USD (twelve thousand five hundred US dollars)"."""
    return f"{amount:,.2f} {currency} ({amount_in_words(amount, currency)})"


@dataclass(frozen=True)
class ArgumentRow:
    """One argument of the guarded call: as proposed and as it runs if approved now."""

    name: str
    proposed: Any
    now: Any

    @property
    def changed(self) -> bool:
        return self.proposed != self.now


@dataclass(frozen=True)
class RequestView:
    approval_id: str
    title: str
    description: str
    status: str
    approval_type: str
    requested_by: str
    # The guarded call (None when the request guards none).
    tool: str | None
    arguments: list[ArgumentRow]
    # The call approving now would release: the proposed one, or as earlier levels left it.
    call_now: dict[str, Any] | None
    # Its input schema (what an edit is drawn from and checked against).
    edit_schema: dict[str, Any] | None
    # The amount a budget asks for now, in figures and words; its argument's name.
    amount: float | None
    currency: str
    amount_argument: str | None
    # What approving changes against the proposal (argument, before, after).
    changes: list[dict[str, Any]]
    # Each level's people with their own answer: "level 2 of 3: manager (manager@example.com
    # approved with changes), director waiting, cfo next"; "admin@example.com (rejected)".
    chain: str
    threshold: int
    approvals_so_far: int
    votes: list[dict[str, Any]]
    time_left: str
    # What the definition asked approvers to see (approval_config.show) and, for a
    # request that guards no call, its context: (label, value).
    facts: list[tuple[str, Any]] = field(default_factory=list)

    # Why the amount is below the one asked for: "lowered from 75,000.00 USD by manager".
    amount_note: str | None = None
    # A veto window's announcement: "Runs at ... (14m left) unless someone vetoes it".
    notice: str | None = None
    # How it was decided, once it was (None while pending).
    outcome: Outcome | None = None
    # While it waits for several approvers: each vote of this level that approved a
    # changed call, "finance@example.com: note: invoice 7 -> to alice" (only approvals of
    # one and the same call add up, core.approvals.voting).
    edits_by_others: list[str] = field(default_factory=list)
    # Whether an approver may change what approving releases (``allow_modify``; every
    # channel's edit inputs and "Approve with changes" follow it, core.approvals.edits).
    changes_allowed: bool = True

    @property
    def amount_text(self) -> str | None:
        return amount_text(self.amount, self.currency) if self.amount is not None else None

    def summary_lines(self) -> list[str]:
        """The view as plain text lines (email, Slack, Gradio, CLI)."""
        lines: list[str] = [self.notice] if self.notice else []
        if self.tool is not None:
            lines.append(f"Call: {self.tool}")
            for row in self.arguments:
                shown = plain(row.now)
                if row.changed:
                    shown += f" (was {plain(row.proposed)})"
                lines.append(f"  {row.name}: {shown}")
        if self.amount_text:
            lines.append(f"Amount: {self.amount_text}")
        if self.amount_note:
            lines.append(f"  ({self.amount_note})")
        for change in self.changes:
            lines.append(
                f"Changed: {change['argument']}: {plain(change['before'])} -> {plain(change['after'])}"
            )
        for label, value in self.facts:
            lines.append(f"{label}: {plain(value)}")
        lines.append(f"Approvers: {self.chain}")
        lines.append(f"Votes: {self.approvals_so_far} of {self.threshold} needed")
        lines.extend(self.edits_lines())
        lines.append(self.time_left)
        return lines

    def edits_lines(self) -> list[str]:
        """The approvals of a changed call so far, and what that means for the next vote."""
        if not self.edits_by_others:
            return []
        return [
            *(f"Approved with changes by {edit}" for edit in self.edits_by_others),
            f"Only approvals of the same call add up ({self.threshold} needed): approve with "
            "the same changes to agree with an approval above; the call as shown needs "
            f"{self.threshold} approvals of its own.",
        ]


# What each vote says, in words.
def request_view(
    approval: ApprovalRequest, responses: Sequence[ApprovalResponse], now: datetime | None = None
) -> RequestView:
    config = ApprovalConfig.model_validate(approval.config)
    proposed = approval.proposed_call
    call_now = current_call(approval)
    if approval.status in ("approved", "modified") and approval.released_call is not None:
        call_now = approval.released_call
    arguments: list[ArgumentRow] = []
    changes: list[dict[str, Any]] = []
    if proposed is not None and call_now is not None:
        names = list(dict.fromkeys([*proposed["arguments"], *call_now["arguments"]]))
        arguments = [
            ArgumentRow(n, proposed["arguments"].get(n), call_now["arguments"].get(n)) for n in names
        ]
        changes = call_diff(proposed["arguments"], call_now["arguments"])
    budget = approval.approval_type == "budget"
    currency = str(approval.context_data.get("currency") or "USD")
    amount: float | None = None
    amount_note = None
    asked_at: dict[int, float] = {}
    if budget:
        earlier = (approval.decision_data or {}).get("approved_amount")
        requested = approval.context_data.get("amount")
        raw = earlier if earlier is not None else requested
        amount = float(raw) if isinstance(raw, int | float) else None
        if isinstance(requested, int | float):
            asked_at, lowered = who_answered.lowerings(approval, responses, float(requested))
            if amount is not None and amount < requested:
                amount_note = who_answered.amount_note(float(requested), currency, lowered)
    action = approval.proposed_action or {}
    facts: list[tuple[str, Any]] = [
        (_label(str(item.get("path"))), item.get("value")) for item in action.get("show") or []
    ]
    if proposed is None:
        for key, value in (action.get("context") or {}).items():
            facts.append((str(key), value))
        for key, value in (approval.context_data or {}).items():
            if key not in ("tool", "arguments") and not (budget and key in ("amount", "currency")):
                facts.append((str(key), value))
    level_votes = [v for v in responses if v.level == approval.level]
    return RequestView(
        approval_id=approval.id,
        title=approval.title,
        description=approval.description,
        status=approval.status,
        approval_type=approval.approval_type,
        requested_by=approval.requested_by,
        tool=proposed["tool"] if proposed is not None else None,
        arguments=arguments,
        call_now=call_now,
        edit_schema=(call_now or {}).get("input_schema") if call_now is not None else None,
        amount=amount,
        currency=currency,
        amount_argument=(config.amount_argument or DEFAULT_AMOUNT_ARGUMENT)
        if budget and proposed is not None
        else None,
        changes=changes,
        chain=who_answered.chain(approval, config, responses),
        threshold=approval.threshold,
        approvals_so_far=sum(v.decision in ("approve", "modify") for v in level_votes),
        votes=[
            {
                "approver": v.approver,
                "level": v.level + 1,
                "decision": v.decision,
                "channel": v.channel,
                "comment": v.comment,
                "data": v.data,
                "at": v.created_at,
                # A budget's amount the vote's level was asked to allow.
                "asked_amount": asked_at.get(v.level),
            }
            for v in responses
        ],
        time_left=_time_left(approval, now),
        facts=facts,
        amount_note=amount_note,
        notice=veto_notice(approval, time_left(approval.expires_at, now)),
        outcome=who_answered.outcome(approval, responses),
        edits_by_others=who_answered.edits_by_others(approval, config, call_now, level_votes),
        changes_allowed=changes_allowed(config, guards_call=call_now is not None),
    )


def answer_confirmation(view: RequestView, approver: str, level: int) -> str:
    """What ``approver``'s answer at ``level`` (1-based) was recorded as, said to them: a plain
    Approve that lowered a budget's amount is a change, and says so with both amounts."""
    mine = [v for v in view.votes if v["approver"] == approver and v["level"] == level]
    if not mine:
        return "Your answer was recorded."
    vote = mine[-1]
    if vote["decision"] != "modify":
        return f"You {DECISION_WORDS.get(vote['decision'], vote['decision'])} the request."
    data = vote["data"] or {}
    asked, allowed = vote.get("asked_amount"), data.get("approved_amount")
    if not (isinstance(asked, int | float) and isinstance(allowed, int | float) and allowed < asked):
        return "You approved the request with changes."
    amounts = f"{float(allowed):,.2f} {view.currency} instead of {float(asked):,.2f} {view.currency}"
    edited = set(data.get("arguments") or {}) - {view.amount_argument}
    if edited:
        return f"You approved the request with changes, at a lower amount: {amounts}."
    return f"You approved a lower amount: {amounts}."


def _label(path: str) -> str:
    """``input.order_id`` -> "Order id"; ``steps.validate_order.total`` -> "Validate order: total"."""
    parts = path.split(".")
    if parts[0] in ("input", "context") and len(parts) > 1:
        text = " ".join(parts[1:])
    elif parts[0] == "steps" and len(parts) > 2:
        text = f"{parts[1]}: {' '.join(parts[2:])}"
    else:
        text = path
    text = text.replace("_", " ")
    return text[:1].upper() + text[1:]


def _time_left(approval: ApprovalRequest, now: datetime | None) -> str:
    # Shown after the votes with no label of its own: "3h 12m left", "no deadline",
    # "expired", or once answered "decided: approved" ("Time left: 3h left" said it twice).
    return (
        time_left(approval.expires_at, now) if approval.status == "pending" else f"decided: {approval.status}"
    )


__all__ = [
    "DECISION_WORDS",
    "answer_confirmation",
    "ArgumentRow",
    "Outcome",
    "RequestView",
    "amount_in_words",
    "amount_text",
    "plain",
    "request_view",
]


def approval_page(
    engine: ApprovalEngine, approval_id: str, *, tenant: str | None
) -> tuple[ApprovalDetail, RequestView]:
    """What the Approval page shows of one request, as a viewer of ``tenant`` sees it:
    the request (a read model) and its view (another tenant's request is unknown)."""
    row = engine.get(approval_id, tenant=tenant)
    return ApprovalDetail.of(row), request_view(row, engine.responses(row.id))


def approve_with_changes_applies(view: RequestView, config: ApprovalConfig) -> bool:
    """Whether "Approve with changes" is offered (every channel's rule): always for a
    guarded call; for a request guarding none, when its type's answer may differ (a
    form, a budget); never under ``allow_modify: false``."""
    if not view.changes_allowed:
        return False
    if view.call_now is not None:
        return True
    return config.modify_allowed and view.approval_type in ("form", "budget")
