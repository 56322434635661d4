"""Who answered what, as every channel says it: each level's people with their own
answer (``chain``), who lowered a budget's amount (``lowerings``, ``amount_note``),
how a decided request was decided and by whom (``outcome``), and, while several
approvals are needed, the approvals of a changed call (``edits_by_others``).

Read from the votes, not only the request's status: a level's changes are credited
to whoever changed the call, the decision to the last vote. ``core.approvals.
presentation`` puts these into the ``RequestView``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.approvals.deciding import levels_for
from core.definitions.approval import ApprovalConfig
from core.definitions.calls import call_diff
from core.store.tables import ApprovalRequest, ApprovalResponse

__all__ = [
    "DECISION_WORDS",
    "Outcome",
    "amount_note",
    "chain",
    "edits_by_others",
    "lowerings",
    "outcome",
    "plain",
]


def plain(value: Any) -> str:
    """A value as one line of text for a table cell."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


@dataclass(frozen=True)
class Outcome:
    """How a request was decided, for its banner: "This request was **{word}**{detail}."."""

    word: str
    detail: str


DECISION_WORDS = {"approve": "approved", "modify": "approved with changes", "reject": "rejected"}


def _decided(vote: ApprovalResponse) -> str:
    return DECISION_WORDS.get(vote.decision, vote.decision)


def _by_level(responses: Sequence[ApprovalResponse]) -> dict[int, list[ApprovalResponse]]:
    found: dict[int, list[ApprovalResponse]] = {}
    for vote in responses:
        found.setdefault(vote.level, []).append(vote)
    return found


def _people(
    approval: ApprovalRequest, votes: list[ApprovalResponse], approvers: list[str]
) -> list[tuple[str, str]]:
    """The level's people, each with their own answer: ("a@x", "approved"), ("b@x",
    "waiting"); once the request is decided, those asked who did not answer are "not answered"."""
    shown = [(v.approver, _decided(v)) for v in votes]
    voters = {v.approver for v in votes}
    rest = [a for a in approvers if a not in voters]
    if approval.status == "pending":
        return shown + [(a, "waiting") for a in rest]
    if any(v.approver not in approvers for v in votes):
        # Someone answered for a group (or as a delegate): a group named cannot be
        # said not to have answered.
        rest = [a for a in rest if "@" in a]
    return shown + [(a, "not answered") for a in rest]


def chain(approval: ApprovalRequest, config: ApprovalConfig, responses: Sequence[ApprovalResponse]) -> str:
    """Each level's people with their own answer, and who is still to, level by level:
    "finance@example.com (waiting)"; "level 2 of 3: manager (manager@example.com approved
    with changes), director waiting, cfo next"."""
    # Levels follow the amount allowed so far, as the engine does when a level passes.
    amount = (approval.decision_data or {}).get("approved_amount", approval.context_data.get("amount"))
    levels = levels_for(config, float(amount) if isinstance(amount, int | float) else None)
    votes_at = _by_level(responses)
    if len(levels) <= 1:
        people = _people(approval, votes_at.get(approval.level, []), list(approval.approvers))
        if not people:  # decided with no one's answer and no one left to name
            return approval.status
        return ", ".join(f"{who} ({state})" for who, state in people)
    parts = []
    for index, level in enumerate(levels):
        votes = votes_at.get(index, [])
        asked = list(approval.approvers) if index == approval.level else list(level.approvers)
        name = level.name or ", ".join(asked)
        if index > approval.level:
            parts.append(f"{name} next" if index == approval.level + 1 else f"{name} then")
        elif not votes:  # waiting, or settled without anyone's answer (a rule, a deadline)
            if index < approval.level:
                parts.append(f"{name} passed")
            elif approval.status == "pending":
                parts.append(f"{name} waiting")
            elif (approval.decision_data or {}).get("on_expiry") == "approve":
                parts.append(f"{name} not answered (approved on expiry)")
            else:
                parts.append(f"{name} {approval.status}")
        else:
            people = (
                _people(approval, votes, asked)
                if index == approval.level
                else [(v.approver, _decided(v)) for v in votes]
            )
            said = ", ".join(f"{who} {state}" for who, state in people)
            parts.append(f"{level.name} ({said})" if level.name else said)
    position = min(approval.level + 1, len(levels))
    return f"level {position} of {len(levels)}: " + ", ".join(parts)


def _settled_levels(approval: ApprovalRequest) -> int:
    """How many levels are settled: those passed, and the last one once decided."""
    return approval.level + (approval.status != "pending")


def lowerings(
    approval: ApprovalRequest, responses: Sequence[ApprovalResponse], requested: float
) -> tuple[dict[int, float], list[tuple[str, float]]]:
    """A budget's amount level by level: what each level was asked for, and the votes that
    lowered it on a settled level (approver, the amount they allowed), in order.

    A vote lowers the amount when it allows less than its level was asked for; a later
    level is asked for the lowest amount an earlier one allowed (as the engine passes it on).
    """
    asked: dict[int, float] = {}
    lowered: list[tuple[str, float]] = []
    cap = requested
    for level, votes in sorted(_by_level(responses).items()):
        asked[level] = cap
        allowed = [
            (v.approver, float(v.data["approved_amount"]))
            for v in votes
            if v.decision in ("approve", "modify") and isinstance(v.data.get("approved_amount"), int | float)
        ]
        if level < _settled_levels(approval):
            lowered += [(who, value) for who, value in allowed if value < cap]
        cap = min([cap, *(value for _, value in allowed)])
    return asked, lowered


def amount_note(requested: float, currency: str, lowered: list[tuple[str, float]]) -> str:
    """ "lowered from 75,000.00 USD by manager@example.com"; with several cuts, each one's amount."""
    text = f"lowered from {requested:,.2f} {currency}"
    if not lowered:
        return text
    if len({value for _, value in lowered}) == 1:
        return text + " by " + ", ".join(dict.fromkeys(who for who, _ in lowered))
    return text + " by " + ", ".join(f"{who} (to {value:,.2f} {currency})" for who, value in lowered)


def outcome(approval: ApprovalRequest, responses: Sequence[ApprovalResponse]) -> Outcome | None:
    """The decision and who made it, as the votes say (not only the request's status): a
    level's changes are credited to whoever changed the call, the decision to the last vote."""
    if approval.status == "pending":
        return None
    when = f" at {approval.decided_at:%Y-%m-%d %H:%M} UTC" if approval.decided_at else ""
    decider = approval.decided_by
    last = [v for v in responses if v.level == approval.level and v.approver == decider]
    decided = last[-1] if last else None
    by = f" by {decider}" if decider else ""
    if approval.status == "modified":
        changers = list(dict.fromkeys(v.approver for v in responses if v.decision == "modify"))
        if decided is None and (approval.decision_data or {}).get("on_expiry") == "approve":
            # The deadline approved what an earlier level changed (core.approvals.expiry).
            said = f"changed by {', '.join(changers)}; " if changers else ""
            return Outcome("approved with changes", f"{when}: {said}approved on expiry")
        if decided is None or (decided.decision == "modify" and changers == [decider]):
            return Outcome("approved with changes", f"{by}{when}")
        if changers:
            return Outcome(
                "approved with changes",
                f"{when}: changed by {', '.join(changers)}; {decider} {_decided(decided)} last",
            )
        return Outcome("approved with changes", f"{when}: {decider} {_decided(decided)} last")
    if approval.status == "rejected" and decided is not None and decided.decision != "reject":
        reason = str((approval.decision_data or {}).get("reason") or "")
        return Outcome("rejected", f"{when}" + (f": {reason}" if reason else ""))
    return Outcome(approval.status, f"{by}{when}")


def edits_by_others(
    approval: ApprovalRequest,
    config: ApprovalConfig,
    call_now: dict[str, Any] | None,
    level_votes: list[ApprovalResponse],
) -> list[str]:
    """Each approval of this level whose edit changed the call shown (a budget's amount
    aside: those agree, the lowest runs), while more approvals are needed."""
    if approval.status != "pending" or approval.threshold < 2 or call_now is None:
        return []
    amount_argument = config.amount_argument if approval.approval_type == "budget" else None
    edits = []
    for vote in level_votes:
        changes = vote.data.get("arguments") if vote.decision == "modify" else None
        if not isinstance(changes, dict):
            continue
        diff = [
            change
            for change in call_diff(call_now["arguments"], {**call_now["arguments"], **changes})
            if change["argument"] != amount_argument
        ]
        if diff:
            said = "; ".join(f"{c['argument']}: {plain(c['before'])} -> {plain(c['after'])}" for c in diff)
            edits.append(f"{vote.approver}: {said}")
    return edits
