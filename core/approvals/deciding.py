"""The primitives of a decision, shared by opening, voting, reassigning and expiry:
the levels a request passes (by amount), who may still answer, assigning
approvers and notifying them through the outbox, the call a request guards,
and the decision itself (``decide``: the outcome recorded with the released
call, the workflow made runnable in the same transaction).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.base.config import get_settings
from core.base.errors import ApprovalClosed, DefinitionError
from core.base.states import APPROVAL_OPEN, APPROVING_OUTCOMES, check_approval_transition
from core.definitions.approval import ApprovalConfig
from core.definitions.calls import call_diff
from core.definitions.limits import check_amount
from core.identity.account_state import disabled_among
from core.identity.groups import groups_of, normalise_principal, outside_tenant
from core.identity.permissions import ROLE_ACTIONS, Action, may_answer
from core.identity.permissions import principal as principal_named
from core.outbox.settings import configured_person_channels
from core.records import rows as store
from core.store.tables import ApprovalAssignee, ApprovalRequest, Notification, User, utcnow

if TYPE_CHECKING:
    pass

log = structlog.get_logger(__name__)

__all__ = [
    "ANSWERING_ROLES",
    "Level",
    "amount_of",
    "answerable",
    "assign",
    "call_record",
    "check_open",
    "current_call",
    "decide",
    "levels_for",
    "notify",
    "person_channels_and_recipients",
    "potential_voters",
]


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


def amount_of(
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


def call_record(call: dict[str, Any] | None) -> dict[str, Any] | None:
    """A call as the audit trail keeps it (without its input schema)."""
    if call is None:
        return None
    return {k: call[k] for k in ("tool", "arguments", "digest", "rule_id") if k in call}


def current_call(approval: ApprovalRequest) -> dict[str, Any] | None:
    """The call the request's current approvers are asked about: what earlier levels
    released, else the proposed call; None when it guards no call."""
    return approval.released_call or approval.proposed_call


def assign(session: Session, approval: ApprovalRequest, approvers: list[str]) -> None:
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


def notify(
    session: Session,
    approval: ApprovalRequest,
    recipients: list[str],
    *,
    kind: str,
    config: ApprovalConfig | None = None,
    reminder: dict[str, Any] | None = None,
    skip: Container[str] = (),
) -> None:
    """Queue one outbox row per channel and recipient (delivered later): a request's
    message, or with ``reminder`` a reminder of it (channels in ``skip`` left out).
    ``config``: the request's, when the caller has it parsed already. A person of
    another tenant, who cannot see the request, is never told about it."""
    config = config or ApprovalConfig.model_validate(approval.config)
    channels, reachable = person_channels_and_recipients(session, config, recipients)
    if foreign := set(outside_tenant(session, reachable, approval.tenant)):
        reachable = [r for r in reachable if normalise_principal(r) not in foreign]
    for channel in channels:
        if channel in skip:
            continue
        for recipient in dict.fromkeys(reachable):
            payload: dict[str, Any] = {"title": approval.title, "level": approval.level}
            if reminder is not None:
                payload["reminder"] = reminder
            payload["channel_config"] = config.channel_configs.get(channel, {})
            session.add(
                Notification(
                    approval_id=approval.id,
                    workflow_id=approval.workflow_id,
                    kind=kind,
                    channel=channel,
                    recipient=recipient,
                    payload=payload,
                )
            )


def check_open(approval: ApprovalRequest, now: datetime) -> None:
    if approval.status != APPROVAL_OPEN:
        who = f" by {approval.decided_by}" if approval.decided_by else ""
        raise ApprovalClosed(
            f"Approval request {approval.id} is already {approval.status}{who}; it cannot be answered again."
        )
    if approval.expires_at is not None and approval.expires_at <= now:
        raise ApprovalClosed(f"Approval request {approval.id} expired at {approval.expires_at.isoformat()}.")


# Roles whose accounts may answer requests (viewers and services never do).
ANSWERING_ROLES = frozenset(
    role for role, actions in ROLE_ACTIONS.items() if Action.APPROVALS_ANSWER in actions
)


def answerable(session: Session, approval: ApprovalRequest, config: ApprovalConfig) -> bool:
    """Whether someone besides the requester (unless they may approve) could answer."""
    if config.allow_self_approval:
        return True
    named = [a for a in approval.approvers if "@" in a and a != approval.requested_by]
    if named:
        # One read: the accounts stay in the session, where principal_named finds them.
        session.scalars(select(User).where(User.email.in_(named))).all()
        if any(may_answer(principal_named(session, name), approval.tenant) for name in named):
            return True  # a named person who may answer: no need to read every user
    return bool(potential_voters(session, approval) - {approval.requested_by})


def potential_voters(
    session: Session, approval: ApprovalRequest, principals: list[str] | None = None
) -> set[str]:
    """Everyone who could still vote: the listed emails and the members of the listed
    groups who may answer a request of its tenant now (``permissions.may_answer``: not
    disabled, a role that answers, the request's tenant; an address without an account
    named by email may answer too). Reassignment and delegation name people by the same rule.
    ``principals``: those of a list other than the request's approvers (what delegation
    would leave, core.approvals.delegation)."""
    listed = set(approval.approvers if principals is None else principals)
    users = session.scalars(select(User)).all()
    voters = {a for a in listed if "@" in a and may_answer(principal_named(session, a), approval.tenant)}
    for user in users:
        if listed.intersection(groups_of(user)) and may_answer(user, approval.tenant):
            voters.add(user.email)
    return voters


def decide(
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
                proposed_call=call_record(approval.proposed_call),
                released_call=call_record(released),
                diff=call_diff(approval.proposed_call["arguments"], released["arguments"]),
            )
        else:
            approval.released_call = None
            event_data["proposed_call"] = call_record(approval.proposed_call)
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
