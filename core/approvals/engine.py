"""The approval engine: requests, votes, thresholds, levels, expiry.

Locks are always taken workflow first, then approval request, on every path
(answer, expiry, rollback, runner), so concurrent answers and rollbacks queue
instead of deadlocking. A decision that lets a waiting workflow go on makes it
runnable in the same transaction, which wakes a runner at commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.approvals import delegation, standing_rules
from core.approvals.expiry import TIMEOUT_ACTOR, EngineSteps, apply_expiry, expire_due
from core.approvals.reminders import schedule_reminders
from core.base.config import get_settings
from core.base.errors import (
    AlreadyVoted,
    ApprovalClosed,
    ApprovalNotFound,
    DefinitionError,
    InvalidResponse,
    InvalidRule,
    NotAuthorized,
)
from core.base.states import APPROVAL_OPEN, APPROVING_OUTCOMES, check_approval_transition
from core.base.storable import unstorable
from core.definitions.approval import ApprovalConfig
from core.definitions.approval_schema import budget_schema, response_schema, schema_problems
from core.definitions.calls import call_diff, edit_problems, released_call
from core.definitions.limits import check_amount
from core.identity.account_state import disabled_among
from core.identity.groups import ADMINS_GROUP, normalise_principal, principals_of
from core.identity.permissions import ROLE_ACTIONS, Action, check
from core.identity.verified import identity_of
from core.outbox.settings import configured_person_channels
from core.records import rows as store
from core.records.listing import pending_approvals
from core.store.tables import (
    ApprovalAssignee,
    ApprovalRequest,
    ApprovalResponse,
    Notification,
    User,
    Workflow,
    WorkflowEvent,
    utcnow,
)
from core.store.tenancy import can_see, tenant_of

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)

DECISIONS = ("approve", "reject", "modify")


@dataclass(frozen=True)
class Level:
    approvers: list[str]
    threshold: int
    name: str | None = None


def levels_for(config: ApprovalConfig, amount: float | None) -> list[Level]:
    """The approver levels a request goes through, in order."""
    if config.levels:
        chosen = [
            Level([normalise_principal(a) for a in lv.approvers], lv.threshold, lv.name)
            for lv in sorted(config.levels, key=lambda lv: lv.min_amount)
            if amount is None or amount >= lv.min_amount
        ]
        if chosen:
            return chosen
        first = min(config.levels, key=lambda lv: lv.min_amount)
        return [Level([normalise_principal(a) for a in first.approvers], first.threshold)]
    return [Level([normalise_principal(a) for a in config.approvers], config.approval_threshold)]


def _amount_of(
    config: ApprovalConfig, context: dict[str, Any], call: dict[str, Any] | None = None
) -> tuple[float | None, str]:
    """A budget request's amount: the guarded call's amount argument, else its context data,
    else the workflow's."""
    data = {**context, **config.context_data}
    if call is not None:
        data = {**data, **call["arguments"]}
        raw = call["arguments"].get(config.amount_argument)
        try:
            if raw is None or isinstance(raw, str):
                raise ValueError(f"must be a number, not {raw!r}")
            return check_amount(raw), str(data.get("currency") or "USD")
        except ValueError as exc:
            raise DefinitionError([f"args.{config.amount_argument}: {exc}"]) from None
    raw = data.get("amount")
    currency = str(data.get("currency") or "USD")
    if raw is None:
        return None, currency
    try:
        return check_amount(raw), currency
    except ValueError as exc:
        raise DefinitionError([f"approval_config.context_data.amount: {exc}"]) from None


def open_approval(
    session: Session,
    *,
    config: ApprovalConfig,
    title: str,
    requested_by: str,
    workflow: Workflow | None = None,
    step_name: str | None = None,
    step_run_id: int | None = None,
    proposed_action: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    call: dict[str, Any] | None = None,
) -> ApprovalRequest:
    """Create a request, its assignees and its notifications in ``session``.

    ``call`` is the call the request guards (``core.definitions.calls.make_call``): the
    one approvers are shown and a decision releases.
    """
    amount, currency = (None, "USD")
    if config.type == "budget":
        amount, currency = _amount_of(config, context or {}, call)
    schema, ui = response_schema(config, amount, currency)
    levels = levels_for(config, amount)
    context_data = dict(config.context_data)
    if config.type == "budget":
        context_data.setdefault("amount", amount)
        context_data.setdefault("currency", currency)
    now = utcnow()
    approval = ApprovalRequest(
        workflow_id=workflow.id if workflow else None,
        step_name=step_name,
        step_run_id=step_run_id,
        title=title,
        description=config.description,
        approval_type=config.type,
        status=APPROVAL_OPEN,
        requested_by=normalise_principal(requested_by),
        approvers=levels[0].approvers,
        threshold=levels[0].threshold,
        config=config.model_dump(mode="json", by_alias=True, exclude_none=True),
        context_data=context_data,
        response_schema=schema,
        ui_schema=ui,
        proposed_action=proposed_action or {},
        proposed_call=call,
        level=0,
        # A veto window's end is its deadline (core.approvals.veto).
        expires_at=now + timedelta(seconds=config.deadline_seconds) if config.deadline_seconds else None,
        tenant=workflow.tenant if workflow else None,
        created_at=now,
        updated_at=now,
    )
    session.add(approval)
    session.flush()
    # Approval policy: a standing rule may release the call at once; people away hand
    # their requests to their delegates; a backup is asked later (core.approvals.delegation).
    rule = standing_rules.matching_rule(session, approval, workflow)
    if rule is None:
        approval.approvers = delegation.delegate_approvers(session, approval, approval.approvers)
        delegation.plan_backup(session, approval, config)
    if rule is None and not _answerable(session, approval, config) and approval.approvers != [ADMINS_GROUP]:
        # Nobody but the requester could ever answer: ask the admins at once
        # instead of letting it expire unanswered.
        asked = approval.approvers
        approval.approvers = [ADMINS_GROUP]
        approval.threshold = 1
        store.append_event(
            session,
            "approval.escalated",
            "system",
            workflow_id=approval.workflow_id,
            approval_id=approval.id,
            step_name=step_name,
            data={
                "escalated_to": [ADMINS_GROUP],
                "forced": False,
                "asked": asked,
                "reason": f"no one but the requester ({approval.requested_by}) "
                f"could answer; asked: {', '.join(asked)}",
            },
        )
    if rule is None:
        _assign(session, approval, approval.approvers)
        _notify(session, approval, approval.approvers, kind="approval.requested")
        schedule_reminders(session, approval, config, now)
    store.append_event(
        session,
        "approval.requested",
        requested_by,
        workflow_id=approval.workflow_id,
        approval_id=approval.id,
        step_name=step_name,
        after={"status": APPROVAL_OPEN},
        data={
            "title": title,
            "type": config.type,
            "approvers": approval.approvers,
            "threshold": approval.threshold,
            "expires_at": approval.expires_at.isoformat() if approval.expires_at else None,
            "call": _call_record(call),
        },
    )
    if rule is not None:
        decision = standing_rules.used(rule)
        if config.type == "budget":
            decision["approved_amount"] = amount
        # The released call names the rule that released it (its digest is the call's own).
        _decide(
            session,
            approval,
            "approved",
            standing_rules.rule_actor(rule.id),
            decision,
            released={**call, "rule_id": rule.id} if call is not None else None,
        )
    return approval


def add_approvers(
    session: Session, approval: ApprovalRequest, principals: list[str], *, kind: str
) -> list[str]:
    """Also ask ``principals`` (after delegation) at the request's current level; returns
    those newly asked. The caller holds the request's lock and records why."""
    added = [
        p for p in delegation.delegate_approvers(session, approval, principals) if p not in approval.approvers
    ]
    if added:
        approval.approvers = [*approval.approvers, *added]
        approval.updated_at = utcnow()
        _assign(session, approval, approval.approvers)
        _notify(session, approval, added, kind=kind)
    return added


def _call_record(call: dict[str, Any] | None) -> dict[str, Any] | None:
    """A call as the audit trail keeps it (without its input schema)."""
    if call is None:
        return None
    return {k: call[k] for k in ("tool", "arguments", "digest", "rule_id") if k in call}


def current_call(approval: ApprovalRequest) -> dict[str, Any] | None:
    """The call the request's current approvers are asked about: what earlier levels
    released, else the proposed call; None when it guards no call."""
    return approval.released_call or approval.proposed_call


def _assign(session: Session, approval: ApprovalRequest, approvers: list[str]) -> None:
    session.execute(delete(ApprovalAssignee).where(ApprovalAssignee.approval_id == approval.id))
    for principal in dict.fromkeys(approvers):
        session.add(
            ApprovalAssignee(
                approval_id=approval.id,
                principal=principal,
                expires_at=approval.expires_at,
                created_at=approval.created_at,
            )
        )


def person_channels_and_recipients(
    session: Session, config: ApprovalConfig, recipients: list[str]
) -> tuple[list[str], list[str]]:
    """The channels a request's people are told through (the request's, else the
    settings' default, else every configured person channel) and the recipients
    that may be told: a disabled account is sent nothing (core.identity.account_state)."""
    channels = config.channels if config.channels is not None else get_settings().default_channels
    if channels is None:
        channels = configured_person_channels(session)
    disabled = disabled_among(session, recipients)
    return list(dict.fromkeys(channels)), [r for r in recipients if r not in disabled]


def _notify(session: Session, approval: ApprovalRequest, recipients: list[str], *, kind: str) -> None:
    """Queue one outbox row per channel and recipient (delivered later)."""
    config = ApprovalConfig.model_validate(approval.config)
    channels, reachable = person_channels_and_recipients(session, config, recipients)
    for channel in channels:
        for recipient in dict.fromkeys(reachable):
            session.add(
                Notification(
                    approval_id=approval.id,
                    workflow_id=approval.workflow_id,
                    kind=kind,
                    channel=channel,
                    recipient=recipient,
                    payload={
                        "title": approval.title,
                        "level": approval.level,
                        "channel_config": config.channel_configs.get(channel, {}),
                    },
                )
            )


def _check_open(approval: ApprovalRequest, now: datetime) -> None:
    if approval.status != APPROVAL_OPEN:
        who = f" by {approval.decided_by}" if approval.decided_by else ""
        raise ApprovalClosed(
            f"Approval request {approval.id} is already {approval.status}{who}; it cannot be answered again."
        )
    if approval.expires_at is not None and approval.expires_at <= now:
        raise ApprovalClosed(f"Approval request {approval.id} expired at {approval.expires_at.isoformat()}.")


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
    _check_open(approval, utcnow())
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
    if decision == "modify" and not config.modify_allowed and call is None:
        raise InvalidResponse(
            [f"decision: {approval.approval_type} approvals cannot be approved with changes"]
        )
    budget = approval.approval_type == "budget"
    cap = _budget_cap(approval) if budget else None
    edit = {k: data[k] for k in _EDIT_KEYS if k in data} if call is not None else {}
    answer = {k: v for k, v in data.items() if k not in edit}
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
    if cap is not None and not problems and float(answer["approved_amount"]) > cap:
        problems = [f"approved_amount: {answer['approved_amount']} is more than the {cap:g} allowed so far"]
    if (
        not problems
        and edited_amount is not None
        and float(edited_amount) != float(answer["approved_amount"])
    ):
        problems = [
            f"arguments.{amount_argument}: {edited_amount} disagrees with "
            f"approved_amount {answer['approved_amount']}; give one amount"
        ]
    if problems:
        raise InvalidResponse(problems)
    if cap is not None and float(answer["approved_amount"]) < cap:
        return "modify"
    if call is not None and edit and released_call(call, edit.get("arguments"))["digest"] != call["digest"]:
        return "modify"
    return decision


def _budget_cap(approval: ApprovalRequest) -> float | None:
    """The most a budget vote may approve: the request, or less if an earlier level cut it."""
    earlier = (approval.decision_data or {}).get("approved_amount")
    requested = approval.context_data.get("amount")
    cap = earlier if earlier is not None else requested
    return float(cap) if cap is not None else None


def _tally(session: Session, approval: ApprovalRequest, config: ApprovalConfig, *, actor: str) -> None:
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
    votes = session.scalars(query.order_by(ApprovalResponse.id)).all()
    approving = [v for v in votes if v.decision in ("approve", "modify")]
    rejecting = [v for v in votes if v.decision == "reject"]
    if rejecting and config.reject_decides:
        _decide(session, approval, "rejected", actor, {"comment": rejecting[-1].comment})
        return
    if len(approving) >= approval.threshold:
        _pass_level(session, approval, config, approving, actor)
        return
    if rejecting:
        potential = _potential_voters(session, approval) - {v.approver for v in votes}
        if len(approving) + len(potential) < approval.threshold:
            _decide(
                session,
                approval,
                "rejected",
                actor,
                {"comment": rejecting[-1].comment, "reason": "threshold unreachable"},
            )


# Roles whose accounts may answer requests (viewers and services never do).
ANSWERING_ROLES = frozenset(
    role for role, actions in ROLE_ACTIONS.items() if Action.APPROVALS_ANSWER in actions
)


def _answerable(session: Session, approval: ApprovalRequest, config: ApprovalConfig) -> bool:
    """Whether someone besides the requester (unless they may approve) could answer."""
    if config.allow_self_approval:
        return True
    named = [a for a in approval.approvers if "@" in a and a != approval.requested_by]
    if named and not session.scalar(
        select(func.count()).select_from(User).where(User.email.in_(named), User.role.not_in(ANSWERING_ROLES))
    ):
        return True  # a named person who may answer: no need to read every user
    return bool(_potential_voters(session, approval) - {approval.requested_by})


def _potential_voters(session: Session, approval: ApprovalRequest) -> set[str]:
    """Everyone who could still vote: listed emails plus members of listed groups."""
    users = session.scalars(select(User)).all()
    cannot = {u.email for u in users if u.role not in ANSWERING_ROLES}
    voters = {a for a in approval.approvers if "@" in a and a not in cannot}
    for user in users:
        if not can_see(user.tenant, approval.tenant) or user.role not in ANSWERING_ROLES:
            continue  # other tenants' members, viewers and services can never vote here
        if set(principals_of(session, user.email)) & set(approval.approvers):
            voters.add(user.email)
    return voters


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
        if budget and amount is not None and config.json_schema is None:
            # The next level is asked about what the earlier ones allowed.
            approval.response_schema = budget_schema(
                float(amount), str(approval.context_data.get("currency") or "USD")
            )
        approval.updated_at = utcnow()
        if config.timeout:
            approval.expires_at = approval.updated_at + timedelta(seconds=config.timeout)
            schedule_reminders(session, approval, config, approval.updated_at)
        _assign(session, approval, approval.approvers)
        _notify(session, approval, approval.approvers, kind=f"approval.requested.level{next_level}")
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
                "released_call": _call_record(released),
            },
        )
        return
    data.pop("modified", None)
    _decide(session, approval, "modified" if modified else "approved", actor, data, released=released)


def _decide(
    session: Session,
    approval: ApprovalRequest,
    outcome: str,
    actor: str,
    data: dict[str, Any],
    *,
    released: dict[str, Any] | None = None,
) -> None:
    """Close the request. An approving outcome releases a guarded call: ``released``,
    else the call its approvers were asked about; a refusal releases none."""
    check_approval_transition(approval.status, outcome)
    before = approval.status
    now = utcnow()
    approval.status = outcome
    approval.decided_at = now
    approval.decided_by = actor
    approval.decision_data = data
    approval.updated_at = now
    event_data: dict[str, Any] = {"data": data}
    if approval.proposed_call is not None:
        if outcome in APPROVING_OUTCOMES:
            released = released if released is not None else current_call(approval)
            approval.released_call = released
            assert released is not None
            event_data.update(
                proposed_call=_call_record(approval.proposed_call),
                released_call=_call_record(released),
                diff=call_diff(approval.proposed_call["arguments"], released["arguments"]),
            )
        else:
            approval.released_call = None
            event_data["proposed_call"] = _call_record(approval.proposed_call)
    session.execute(delete(ApprovalAssignee).where(ApprovalAssignee.approval_id == approval.id))
    log.info(
        "approval decided",
        approval_id=approval.id,
        workflow_id=approval.workflow_id,
        step=approval.step_name,
        actor=actor,
        outcome=outcome,
    )
    store.append_event(
        session,
        "approval.decided",
        actor,
        workflow_id=approval.workflow_id,
        approval_id=approval.id,
        step_name=approval.step_name,
        before={"status": before},
        after={"status": outcome},
        data=event_data,
    )
    if approval.workflow_id and approval.step_run_id is not None:
        workflow = store.get_workflow(session, approval.workflow_id)
        if workflow.status == "waiting_approval" and workflow.current_step_run_id == approval.step_run_id:
            store.transition_workflow(
                session, workflow, "running", actor, data={"approval_id": approval.id, "outcome": outcome}
            )
            store.schedule(session, workflow)


def cancel_open_approvals(session: Session, workflow_id: str, actor: str, reason: str) -> list[str]:
    """Cancel every open request of a workflow; returns their ids."""
    approvals = session.scalars(
        select(ApprovalRequest)
        .where(ApprovalRequest.workflow_id == workflow_id, ApprovalRequest.status == APPROVAL_OPEN)
        .with_for_update()
    ).all()
    for approval in approvals:
        check_approval_transition(approval.status, "cancelled")
        approval.status = "cancelled"
        approval.decided_at = utcnow()
        approval.decided_by = actor
        session.execute(delete(ApprovalAssignee).where(ApprovalAssignee.approval_id == approval.id))
        store.append_event(
            session,
            "approval.cancelled",
            actor,
            workflow_id=workflow_id,
            approval_id=approval.id,
            step_name=approval.step_name,
            before={"status": APPROVAL_OPEN},
            after={"status": "cancelled"},
            data={"reason": reason},
        )
    return [a.id for a in approvals]


def expire(session: Session, approval: ApprovalRequest, actor: str, *, forced: bool = False) -> str:
    """Apply the request's deadline rule (escalation chain, ``on_expiry``, veto window:
    core.approvals.expiry); returns what happened."""
    return apply_expiry(session, approval, actor, _expiry_steps(), forced=forced)


def _expiry_steps() -> EngineSteps:
    """This module's steps a deadline takes (core.approvals.expiry cannot import them)."""
    return EngineSteps(
        assign=_assign, notify=_notify, decide=_decide, current_call=current_call, lock=lock_approval
    )


def lock_approval(session: Session, approval_id: str) -> ApprovalRequest:
    """Lock a request for a change, in the one lock order: its workflow, then it."""
    approval = store.get_approval(session, approval_id)
    if approval.workflow_id:
        store.get_workflow(session, approval.workflow_id, for_update=True)
    approval = store.get_approval(session, approval_id, for_update=True)
    session.refresh(approval)
    return approval


class ApprovalEngine:
    """The seed's approval API over one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def request_approval(
        self,
        workflow_id: str | None,
        title: str,
        description: str = "",
        approval_type: str = "binary",
        requested_from: str | list[str] | None = None,
        *,
        requested_by: str = "system",
        config: dict[str, Any] | None = None,
        context_data: dict[str, Any] | None = None,
        proposed_action: dict[str, Any] | None = None,
        timeout: float | str | None = None,
    ) -> ApprovalRequest:
        """Open a request outside any step (the agent tool and API use this)."""
        from core.definitions.workflow import parse_approval_config

        raw: dict[str, Any] = {
            "title": title,
            "description": description,
            "type": approval_type,
            **(config or {}),
        }
        if requested_from is not None:
            raw["requested_from"] = requested_from
        if context_data is not None:
            raw["context_data"] = context_data
        if timeout is not None:
            raw["timeout"] = timeout
        parsed = parse_approval_config(raw)
        with self.db.session() as session:
            workflow = store.get_workflow(session, workflow_id, for_update=True) if workflow_id else None
            return open_approval(
                session,
                config=parsed,
                title=title,
                requested_by=requested_by,
                workflow=workflow,
                proposed_action=proposed_action,
                context=workflow.context if workflow else {},
            )

    def respond_to_approval(
        self,
        approval_id: str,
        approver_id: str,
        decision: str,
        data: dict[str, Any] | None = None,
        comment: str = "",
        channel: str = "api",
        *,
        allow_for_days: float | None = None,
        allow_when: str | None = None,
    ) -> ApprovalRequest:
        """Record one vote. ``allow_for_days``: "approve, and allow calls like this for N
        days": the same transaction creates a standing rule (core.approvals.standing_rules) for the
        call as released, or for ``allow_when`` (needs ``policies:manage``)."""
        with self.db.read() as session:  # validated before any lock is taken
            check_vote(
                session,
                store.get_approval(session, approval_id),
                approver=approver_id,
                decision=decision,
                data=data,
                comment=comment,
            )
            if allow_for_days is not None:
                check_allow(
                    session,
                    store.get_approval(session, approval_id),
                    approver_id,
                    decision,
                    allow_for_days,
                    allow_when,
                )
        with (
            structlog.contextvars.bound_contextvars(approval_id=approval_id, actor=approver_id),
            self.db.session() as session,
        ):
            approval = lock_approval(session, approval_id)
            with structlog.contextvars.bound_contextvars(
                workflow_id=approval.workflow_id, step=approval.step_name
            ):
                answered = record_response(
                    session,
                    approval,
                    approver=approver_id,
                    decision=decision,
                    data=data,
                    comment=comment,
                    channel=channel,
                )
                log.info(
                    "approval response recorded", decision=decision, channel=channel, status=answered.status
                )
                if allow_for_days is not None:
                    standing_rules.rule_from_answer(
                        session, answered, approver_id, allow_for_days, allow_when
                    )
                return answered

    def expire_approval(self, approval_id: str, actor: str = "system") -> ApprovalRequest:
        """Expire a request now (its deadline rule applies): ``approvals:reassign``."""
        with self.db.session() as session:
            store.get_approval(session, approval_id, tenant=tenant_of(session, actor))  # scoped
            check(session, actor, Action.APPROVALS_REASSIGN, approval_id=approval_id)
            approval = lock_approval(session, approval_id)
            expire(session, approval, actor, forced=True)
            return approval

    def expire_due(self, limit: int = 100) -> int:
        """Apply the deadline rule to requests past their deadline, and ask the backups whose
        share of the timeout has passed unanswered (core.approvals.delegation); how many."""
        done = expire_due(self.db, TIMEOUT_ACTOR, _expiry_steps(), limit)
        return done + delegation.ask_due_backups(
            self.db, limit, lock=lock_approval, add_approvers=add_approvers
        )

    def next_expiry(self) -> datetime | None:
        with self.db.read() as session:
            expiry = session.scalar(
                select(func.min(ApprovalRequest.expires_at)).where(ApprovalRequest.status == APPROVAL_OPEN)
            )
        backup = delegation.next_backup(self.db)
        return min(d for d in (expiry, backup) if d is not None) if expiry or backup else None

    def get(self, approval_id: str, *, tenant: str | None = None) -> ApprovalRequest:
        """The request as a viewer of ``tenant`` sees it (another tenant's is unknown)."""
        with self.db.read() as session:
            return store.get_approval(session, approval_id, tenant=tenant)

    def responses(self, approval_id: str, *, tenant: str | None = None) -> list[ApprovalResponse]:
        with self.db.read() as session:
            if tenant is not None:
                store.get_approval(session, approval_id, tenant=tenant)
            return list(
                session.scalars(
                    select(ApprovalResponse)
                    .where(ApprovalResponse.approval_id == approval_id)
                    .order_by(ApprovalResponse.id)
                ).all()
            )

    def list_pending_approvals(
        self,
        requested_from: str | None = None,
        workflow_id: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        tenant: str | None = None,
    ) -> list[ApprovalRequest]:
        """Open requests, most urgent (soonest expiry) then newest first.

        Only those a viewer of ``tenant`` sees; with ``requested_from``, also
        only those of that person's tenant (a group name shared by two
        tenants never brings the other's requests).
        """
        return pending_approvals(
            self.db, requested_from, workflow_id, limit=limit, offset=offset, tenant=tenant
        )


def check_allow(
    session: Session,
    approval: ApprovalRequest,
    approver: str,
    decision: str,
    days: float,
    condition: str | None,
) -> None:
    """Refuse "approve, and allow calls like this" (``InvalidRule``, ``NotAuthorized``)
    unless the answer approves a guarded call and ``approver`` may make the rule."""
    if decision == "reject":
        raise InvalidRule(["allow_for_days: only an approving answer can allow calls like this"])
    standing_rules.check_answer_rule(session, approval, approver, days, condition)


def is_approving(status: str) -> bool:
    return status in APPROVING_OUTCOMES


__all__ = [
    "ApprovalEngine",
    "open_approval",
    "record_response",
    "check_allow",
    "expire",
    "cancel_open_approvals",
    "current_call",
    "is_approving",
]
