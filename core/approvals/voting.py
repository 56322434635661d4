"""Recording a vote: checked (open, allowed, the answer valid against the
request's schema, an edit within the call's bounds, a budget within its cap),
stored with its channel and verified identity, and tallied: a threshold met
passes the level or decides, one that can no longer be met rejects.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.approvals import delegation
from core.approvals.deciding import (
    assign,
    call_record,
    check_open,
    current_call,
    decide,
    levels_for,
    notify,
    potential_voters,
)
from core.approvals.reminders import schedule_reminders
from core.base.errors import AlreadyVoted, ApprovalNotFound, InvalidResponse, NotAuthorized
from core.base.storable import unstorable
from core.definitions.approval import ApprovalConfig
from core.definitions.approval_schema import budget_schema, schema_problems
from core.definitions.calls import OBJECT_SCHEMA, amount_problems, call_digest, edit_problems, released_call
from core.identity.groups import normalise_principal, principals_of
from core.identity.permissions import Action, check
from core.identity.verified import identity_of
from core.records import rows as store
from core.store.tables import ApprovalRequest, ApprovalResponse, WorkflowEvent, utcnow
from core.store.tenancy import can_see, tenant_of

if TYPE_CHECKING:
    pass

log = structlog.get_logger(__name__)

__all__ = [
    "DECISIONS",
    "after_vote",
    "answer_call",
    "changes_allowed",
    "check_vote",
    "objections",
    "record_response",
    "round_votes",
]


DECISIONS = ("approve", "reject", "modify")
# What a budget's answer lowers. Only a budget reads it: on any other request it is refused,
# except as a form's own field on a request that guards no call (``_validated_decision``).
AMOUNT = "approved_amount"


def record_response(
    session: Session,
    approval: ApprovalRequest,
    *,
    approver: str,
    decision: str,
    data: dict[str, Any] | None,
    comment: str,
    channel: str,
) -> ApprovalRequest:
    """Validate and record one vote, then decide if the vote settles it.

    The caller holds the workflow's and the approval's row locks. Another
    tenant's request answers like an unknown id, whatever the channel, so a
    tenant's user never votes on (or learns the state of) another tenant's.
    """
    approver = normalise_principal(approver)
    decision, data = check_vote(
        session, approval, approver=approver, decision=decision, data=data, comment=comment
    )
    now = utcnow()
    vote = ApprovalResponse(
        approval_id=approval.id,
        approver=approver,
        level=approval.level,
        decision=decision,
        channel=channel,
        comment=comment or "",
        data=data,
        created_at=now,
    )
    session.add(vote)
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyVoted(f"{approver} has already answered approval request {approval.id}.") from exc
    store.append_event(
        session,
        "approval.responded",
        approver,
        workflow_id=approval.workflow_id,
        approval_id=approval.id,
        step_name=approval.step_name,
        data={
            "decision": decision,
            "channel": channel,
            "comment": comment or "",
            "data": data,
            "level": approval.level,
            "identity": identity_of(approver, channel),
        },
    )
    _tally(session, approval, ApprovalConfig.model_validate(approval.config), actor=approver)
    return approval


_EDIT_KEYS = ("tool", "arguments")


def after_vote(approval: ApprovalRequest, approving: bool) -> str:
    """What became of the request once a vote was recorded, as the sentence every channel
    appends to "You approved ..." (empty when the vote's own words say it all): an
    approval can leave it waiting, or end it rejected when no call can reach the
    threshold any more (votes for different calls, ``_tally``)."""
    if approval.status == "pending":
        return " The request is waiting for other approvers."
    if approving and approval.status == "rejected":
        reason = (approval.decision_data or {}).get("reason") or "too few approvers are left"
        return f" The request is now rejected ({reason}); nothing runs."
    return ""


def check_vote(
    session: Session,
    approval: ApprovalRequest,
    *,
    approver: str,
    decision: str,
    data: dict[str, Any] | None,
    comment: str,
) -> tuple[str, dict[str, Any]]:
    """Every check of one vote, writing nothing: (the decision as recorded, its data).

    Run once before the locks are taken (so a slow or refused answer never
    holds them) and again under them, where the request may have moved on.
    """
    if not can_see(tenant_of(session, approver), approval.tenant):
        raise ApprovalNotFound(f"No approval request has the id {approval.id!r}.")
    check_open(approval, utcnow())
    if decision not in DECISIONS:
        raise InvalidResponse([f"decision: must be one of {', '.join(DECISIONS)}"])
    approver = normalise_principal(approver)
    config = ApprovalConfig.model_validate(approval.config)
    # Viewers and service accounts never answer (core.identity.permissions; the refusal is audited).
    check(session, approver, Action.APPROVALS_ANSWER, approval_id=approval.id)
    principals = principals_of(session, approver)
    if not set(principals) & set(approval.approvers):
        raise NotAuthorized(
            f"{approver} is not an approver of this request (asked: {', '.join(approval.approvers)})."
        )
    if approver == approval.requested_by and decision != "reject" and not config.allow_self_approval:
        raise NotAuthorized(f"{approver} requested this approval and cannot approve it.")
    already = session.scalar(
        select(ApprovalResponse.id).where(
            ApprovalResponse.approval_id == approval.id,
            ApprovalResponse.approver == approver,
            ApprovalResponse.level == approval.level,
        )
    )
    if already is not None:
        raise AlreadyVoted(f"{approver} has already answered approval request {approval.id}.")
    data = dict(data or {})
    if problems := unstorable({"data": data, "comment": comment}):
        raise InvalidResponse(problems)
    return _validated_decision(approval, config, decision, data), data


def _validated_decision(
    approval: ApprovalRequest, config: ApprovalConfig, decision: str, data: dict[str, Any]
) -> str:
    """Check an approving answer; ``data`` gains the budget's amount. Returns the decision.

    A request that guards a call may be answered with ``{"arguments": {...}}``
    whatever its type: the edit is checked against the tool's input schema
    (another tool, an unknown argument or a budget raised are refused); the
    rest of the answer against the request's response schema.
    """
    if decision == "reject":
        return decision
    call = current_call(approval)
    allowed = changes_allowed(config, guards_call=call is not None)
    if decision == "modify" and not allowed and call is None and config.allow_modify is None:
        raise InvalidResponse(
            [f"decision: {approval.approval_type} approvals cannot be approved with changes"]
        )
    budget = approval.approval_type == "budget"
    cap = _budget_cap(approval) if budget else None
    edit = {k: data[k] for k in _EDIT_KEYS if k in data} if call is not None else {}
    answer = {k: v for k, v in data.items() if k not in edit}
    if not budget and AMOUNT in answer and (call is not None or not _asks_for(approval, AMOUNT)):
        raise InvalidResponse([_amount_not_taken(approval, call)])
    if unknown := _keys_not_taken(approval, call, data):
        raise InvalidResponse(unknown)
    if not allowed:
        # allow_modify: false: what is approved is what was asked, and "with changes" is refused.
        changed = _changes(call, edit, answer, cap) or (["decision"] if decision == "modify" else [])
        if changed:
            raise InvalidResponse([f"{name}: {_fixed(approval, call)}" for name in changed])
    amount_argument = config.amount_argument if budget else None
    problems = edit_problems(call, edit, amount_argument=amount_argument, cap=cap) if call is not None else []
    edited_amount = (
        (edit.get("arguments") or {}).get(amount_argument)
        if amount_argument and isinstance(edit.get("arguments"), dict)
        else None
    )
    if cap is not None and "approved_amount" not in answer:
        answer["approved_amount"] = edited_amount if edited_amount is not None and not problems else cap
        data["approved_amount"] = answer["approved_amount"]
    problems += schema_problems(approval.response_schema, answer)
    if budget and "approved_amount" in answer and not problems:
        # Whatever the answer's schema says (a custom one may not mention it).
        problems = amount_problems("approved_amount", answer["approved_amount"], cap)
    if (
        not problems
        and edited_amount is not None
        and float(edited_amount) != float(answer["approved_amount"])
    ):
        problems = [
            f"arguments.{amount_argument}: {edited_amount} disagrees with "
            f"approved_amount {answer['approved_amount']}; give one amount"
        ]
    released = None
    if not problems and call is not None:
        released = _released_by(call, config, budget, edit.get("arguments"), answer.get("approved_amount"))
        edited = {**call["arguments"], **(edit.get("arguments") or {})}
        if amount_argument and released["arguments"].get(amount_argument) != edited.get(amount_argument):
            # The amount set into the call must suit the tool too (an integer argument, a minimum).
            problems = [
                f"approved_amount: {call['tool']} does not take it: {problem}"
                for problem in schema_problems(
                    call.get("input_schema") or OBJECT_SCHEMA, released["arguments"]
                )
            ]
    if problems:
        raise InvalidResponse(problems)
    if cap is not None and float(answer["approved_amount"]) < cap:
        return "modify"
    if call is not None and released is not None:
        if released["digest"] != call["digest"]:
            return "modify"
        if decision == "modify" and not set(answer) - {"approved_amount"}:
            return "approve"  # "with changes" that change nothing: the call as shown is approved
    if budget and decision == "modify" and not set(answer) - {"approved_amount"}:
        return "approve"  # a budget's full amount, nothing else: what is allowed is what was asked
    return decision


def changes_allowed(config: ApprovalConfig, *, guards_call: bool) -> bool:
    """Whether an approver may change what approving releases or answers (arguments, an
    approved amount, "approve with changes"): ``allow_modify`` as the definition says; unset,
    a guarded call's arguments may be changed, and a form's or budget's answer."""
    if config.allow_modify is not None:
        return config.allow_modify
    return guards_call or config.modify_allowed


def _fixed(approval: ApprovalRequest, call: dict[str, Any] | None) -> str:
    """Why a change is refused under ``allow_modify: false``, and what the approver can do."""
    what = f"the call to {call['tool']} as shown" if call is not None else "it as asked"
    return (
        "this request cannot be changed (its definition says allow_modify: false): "
        f"approve {what}, or reject it"
    )


def _changes(
    call: dict[str, Any] | None, edit: dict[str, Any], answer: dict[str, Any], cap: float | None
) -> list[str]:
    """What an answer changes of the call or the amount asked, by name (``arguments.note``,
    ``tool``, ``approved_amount``): a value given that differs from the one now."""
    changed = []
    if call is not None and "tool" in edit and edit["tool"] != call["tool"]:
        changed.append("tool")
    arguments = edit.get("arguments")
    if call is not None and arguments is not None:
        if not isinstance(arguments, dict):
            changed.append("arguments")
        else:
            now = call["arguments"]
            changed += [
                f"arguments.{name}"
                for name, value in arguments.items()
                if name not in now
                or now[name] != value
                or isinstance(now[name], bool) != isinstance(value, bool)
            ]
    if cap is not None and AMOUNT in answer:
        amount = answer[AMOUNT]
        if isinstance(amount, bool) or not isinstance(amount, int | float) or float(amount) != cap:
            changed.append(AMOUNT)
    return changed


def _keys_not_taken(
    approval: ApprovalRequest, call: dict[str, Any] | None, data: dict[str, Any]
) -> list[str]:
    """Why keys of an answer's data are refused, each naming its key: a key no part of the
    request reads would be recorded (an approval "with changes") while what runs is the
    call as shown. A request that guards a call takes ``arguments`` and ``tool`` (its edit),
    a budget's ``approved_amount`` and its answer schema's own fields; one that guards none
    takes its schema's fields, and anything when the schema names none (a gate's free
    answer) or says it takes more (``additionalProperties``, ``patternProperties``).
    ``approved_amount`` on a request that is not a budget is refused before this
    (``_amount_not_taken``)."""
    schema = approval.response_schema or {}
    properties = schema.get("properties")
    fields = set(properties) if isinstance(properties, dict) else set()
    if schema.get("additionalProperties") not in (None, False) or "patternProperties" in schema:
        return []
    if call is None and not fields:
        return []
    takes = fields | {AMOUNT}
    if call is not None:
        takes |= set(_EDIT_KEYS)
    unknown = sorted(key for key in data if key not in takes)
    if not unknown:
        return []
    listed = ", ".join(sorted(takes - ({AMOUNT} if approval.approval_type != "budget" else set())))
    what = (
        f'approving runs {call["tool"]} as shown or as changed under "arguments"'
        if call is not None
        else "nothing reads it"
    )
    return [
        f"{key}: this {approval.approval_type} request's answer takes no such key ({what}, so it "
        f"would be recorded while changing nothing); it takes: {listed}"
        for key in unknown
    ]


def _asks_for(approval: ApprovalRequest, name: str) -> bool:
    """Whether the request's answer schema names the field ``name`` (a form's own field)."""
    properties = (approval.response_schema or {}).get("properties")
    return isinstance(properties, dict) and name in properties


def _amount_not_taken(approval: ApprovalRequest, call: dict[str, Any] | None) -> str:
    """Why an approved amount is refused on a request that is not a budget: nothing would
    read it, so the answer would be recorded as "up to N" while the call ran as shown."""
    kind = f"this {approval.approval_type} request"
    if call is None:
        return (
            f"{AMOUNT}: only a budget request takes an approved amount, and {kind}'s answer has no such field"
        )
    return (
        f"{AMOUNT}: only a budget request takes an approved amount; approving {kind} runs "
        f"{call['tool']} with the arguments shown, so an amount here would change nothing: "
        'change the call\'s arguments instead ({"arguments": {...}}), or reject it'
    )


def answer_call(approval: ApprovalRequest, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The call an approving answer with ``data`` approves, as its vote will record it: the
    call the request's approvers are asked about now, with the answer's changes and a
    budget's amount. What "allow calls like this" follows, whether or not the vote decides.
    None when the request guards no call or the answer is not valid (its vote is refused)."""
    call = current_call(approval)
    if call is None:
        return None
    config = ApprovalConfig.model_validate(approval.config)
    data = dict(data or {})
    try:
        _validated_decision(approval, config, "approve", data)  # a budget's amount, as recorded
    except InvalidResponse:
        return None
    budget = approval.approval_type == "budget"
    return _released_by(call, config, budget, data.get("arguments"), data.get("approved_amount"))


def _released_by(
    call: dict[str, Any],
    config: ApprovalConfig,
    budget: bool,
    changes: dict[str, Any] | None,
    approved_amount: Any,
) -> dict[str, Any]:
    """The call one approving vote approves: its edit, with its amount for a budget."""
    return released_call(
        call,
        changes,
        amount_argument=config.amount_argument if budget else None,
        approved_amount=float(approved_amount) if budget and approved_amount is not None else None,
    )


def _budget_cap(approval: ApprovalRequest) -> float | None:
    """The most a budget vote may approve: the request, or less if an earlier level cut it."""
    earlier = (approval.decision_data or {}).get("approved_amount")
    requested = approval.context_data.get("amount")
    cap = earlier if earlier is not None else requested
    return float(cap) if cap is not None else None


def round_votes(session: Session, approval: ApprovalRequest) -> list[ApprovalResponse]:
    """The votes that count now: this level's, cast since the last escalation, in order."""
    query = select(ApprovalResponse).where(
        ApprovalResponse.approval_id == approval.id,
        ApprovalResponse.level == approval.level,
    )
    if approval.escalations:
        # An escalation hands the request to new approvers with a new
        # threshold: votes cast before it belong to the round that timed out.
        escalated_at = session.scalar(
            select(func.max(WorkflowEvent.created_at)).where(
                WorkflowEvent.approval_id == approval.id,
                WorkflowEvent.event_type == "approval.escalated",
            )
        )
        if escalated_at is not None:
            query = query.where(ApprovalResponse.created_at >= escalated_at)
    return list(session.scalars(query.order_by(ApprovalResponse.id)).all())


def objections(session: Session, approval: ApprovalRequest) -> list[ApprovalResponse]:
    """The votes that count now and object to the call as asked about: a reject, or an
    approval of another call (changed arguments, a lower budget). What a veto window's end
    must not run over (core.approvals.veto)."""
    call = current_call(approval)
    objecting = []
    for vote in round_votes(session, approval):
        if vote.decision == "reject":
            objecting.append(vote)
        elif call is not None:
            approved = answer_call(approval, vote.data)
            if approved is None or approved["digest"] != call["digest"]:
                objecting.append(vote)
    return objecting


def _tally(session: Session, approval: ApprovalRequest, config: ApprovalConfig, *, actor: str) -> None:
    votes = round_votes(session, approval)
    approving = [v for v in votes if v.decision in ("approve", "modify")]
    rejecting = [v for v in votes if v.decision == "reject"]
    # In a veto window any one reject is the veto (reject_decides: false is refused there;
    # a definition stored before that still decides so).
    if rejecting and (config.reject_decides or config.mode == "veto"):
        decide(session, approval, "rejected", actor, {"comment": rejecting[-1].comment})
        return
    agreeing = _agreeing(approval, config, approving)
    if len(agreeing) >= approval.threshold:
        _pass_level(session, approval, config, agreeing, actor)
        return
    if rejecting or len(agreeing) < len(approving):
        potential = potential_voters(session, approval) - {v.approver for v in votes}
        if len(agreeing) + len(potential) < approval.threshold:
            reason = "threshold unreachable"
            if len(agreeing) < len(approving):
                reason += (
                    f": no call was approved by {approval.threshold} approvers "
                    "(they approved different calls)"
                )
            decide(
                session,
                approval,
                "rejected",
                actor,
                {"comment": rejecting[-1].comment if rejecting else "", "reason": reason},
            )


def _agreeing(
    approval: ApprovalRequest, config: ApprovalConfig, approving: list[ApprovalResponse]
) -> list[ApprovalResponse]:
    """The largest set of approving votes that approved one and the same call (the
    newest vote's set when two are as large), in the order cast.

    A level that needs several approvers releases a call only when that many
    approved it: one approver's edit is not run on another's approval of the
    original. A budget's votes agree when they differ only in the amount (each
    allows up to its own; the lowest is released). Without a guarded call, every
    approving vote agrees.
    """
    call = current_call(approval)
    if call is None:
        return approving
    budget = approval.approval_type == "budget"
    groups: dict[str, list[ApprovalResponse]] = {}
    for vote in approving:
        released = _released_by(
            call, config, budget, vote.data.get("arguments"), vote.data.get("approved_amount")
        )
        arguments = dict(released["arguments"])
        if budget:
            arguments.pop(config.amount_argument, None)
        groups.setdefault(call_digest(released["tool"], arguments), []).append(vote)
    return max(reversed(groups.values()), key=len, default=[])


def _pass_level(
    session: Session,
    approval: ApprovalRequest,
    config: ApprovalConfig,
    approving: list[ApprovalResponse],
    actor: str,
) -> None:
    """The level's threshold is met: go to the next level, or decide.

    No answer is invented from several: the decision's data is the answer of
    the vote that decided (the last one reaching the threshold), except that a
    budget releases the lowest amount approved so far. A guarded call is
    released as that vote edited it, with the budget's amount applied.
    """
    earlier = dict(approval.decision_data or {})
    deciding = approving[-1]
    data: dict[str, Any] = dict(deciding.data)
    budget = approval.approval_type == "budget"
    amount = None
    if budget:
        # A lower amount allowed at one level carries on: later levels only cut further.
        amounts = [float(v.data["approved_amount"]) for v in approving if "approved_amount" in v.data]
        if earlier.get("approved_amount") is not None:
            amounts.append(float(earlier["approved_amount"]))
        if amounts:
            amount = min(amounts)
            data["approved_amount"] = amount
    call = current_call(approval)
    released = None
    if call is not None:
        released = released_call(
            call,
            deciding.data.get("arguments"),
            amount_argument=config.amount_argument if budget else None,
            approved_amount=amount,
        )
    modified = (
        deciding.decision == "modify"
        or bool(earlier.get("modified", False))
        or (
            released is not None
            and approval.proposed_call is not None
            and released["digest"] != approval.proposed_call["digest"]
        )
        or (
            amount is not None
            and approval.context_data.get("amount") is not None
            and amount < float(approval.context_data["amount"])
        )
    )
    levels = levels_for(config, amount if amount is not None else approval.context_data.get("amount"))
    next_level = approval.level + 1
    if config.levels and next_level < len(levels):
        approval.decision_data = {**data, "modified": modified}
        approval.released_call = released
        approval.level = next_level
        approval.approvers = delegation.delegate_approvers(session, approval, levels[next_level].approvers)
        approval.threshold = levels[next_level].threshold
        delegation.keep_quorum(session, approval, config, levels[next_level].approvers)
        if budget and amount is not None and config.json_schema is None:
            # The next level is asked about what the earlier ones allowed.
            approval.response_schema = budget_schema(
                float(amount), str(approval.context_data.get("currency") or "USD")
            )
        approval.updated_at = utcnow()
        if config.timeout:
            approval.expires_at = approval.updated_at + timedelta(seconds=config.timeout)
            schedule_reminders(session, approval, config, approval.updated_at)
        assign(session, approval, approval.approvers)
        notify(session, approval, approval.approvers, kind=f"approval.requested.level{next_level}")
        store.append_event(
            session,
            "approval.level_passed",
            actor,
            workflow_id=approval.workflow_id,
            approval_id=approval.id,
            step_name=approval.step_name,
            data={
                "level": next_level - 1,
                "next_level": next_level,
                "next_approvers": approval.approvers,
                "released_call": call_record(released),
            },
        )
        return
    data.pop("modified", None)
    decide(session, approval, "modified" if modified else "approved", actor, data, released=released)
