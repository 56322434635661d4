"""The approval engine: requests, votes, thresholds, levels, expiry.

Locks are always taken workflow first, then approval request, on every path
(answer, expiry, rollback, runner), so concurrent answers and rollbacks queue
instead of deadlocking. A decision that lets a waiting workflow go on makes it
runnable in the same transaction, which wakes a runner at commit.

This module opens requests and is the engine's facade (``ApprovalEngine``);
votes are recorded in ``voting``, and what both share (levels, assignment,
notifications, the decision itself) is in ``deciding``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.approvals import delegation, standing_rules
from core.approvals.deciding import (
    Level,
    amount_of,
    answerable,
    assign,
    call_record,
    current_call,
    decide,
    levels_for,
    notify,
    person_channels_and_recipients,
)
from core.approvals.expiry import TIMEOUT_ACTOR, EngineSteps, apply_expiry, expire_due
from core.approvals.handing_on import check_hand_on
from core.approvals.reminders import schedule_reminders
from core.approvals.voting import DECISIONS, answer_call, check_vote, record_response
from core.base.errors import ApproverOutsideTenant, InvalidRule
from core.base.states import APPROVAL_OPEN, APPROVING_OUTCOMES, check_approval_transition
from core.definitions.approval import ApprovalConfig
from core.definitions.approval_schema import response_schema
from core.definitions.limits import MAX_TITLE_LENGTH
from core.identity.groups import ADMINS_GROUP, normalise_principal, not_in_tenant
from core.records import rows as store
from core.records.listing import pending_approvals
from core.store.tables import ApprovalAssignee, ApprovalRequest, ApprovalResponse, Workflow, utcnow
from core.store.tenancy import tenant_of

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)


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

    A person named to decide (approvers, levels, escalation chain, backup) who
    is a user of another tenant than the workflow's could never see or answer
    it: ``ApproverOutsideTenant``, before anything is written (the approver may
    be known only now: an agent's question, a held call's routing).
    """
    tenant = workflow.tenant if workflow else None
    if problems := not_in_tenant(session, config.named_people(), tenant):
        raise ApproverOutsideTenant([f"approval_config.{problem}" for problem in problems])
    amount, currency = (None, "USD")
    if config.type == "budget":
        amount, currency = amount_of(config, context or {}, call)
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
        # A title given at run time (an agent's question) is shortened, not refused.
        title=title if len(title) <= MAX_TITLE_LENGTH else title[: MAX_TITLE_LENGTH - 1] + "\u2026",
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
        tenant=tenant,
        created_at=now,
        updated_at=now,
    )
    session.add(approval)
    session.flush()
    # Approval policy: a standing rule may release the call at once; people away hand
    # their requests to their delegates; a backup is asked later (core.approvals.delegation).
    rule = standing_rules.matching_rule(session, approval, workflow)
    if rule is None:
        approval.approvers = delegation.delegate_approvers(session, approval, levels[0].approvers)
        delegation.keep_quorum(session, approval, config, levels[0].approvers)
        delegation.plan_backup(session, approval, config)
    if rule is None and not answerable(session, approval, config) and approval.approvers != [ADMINS_GROUP]:
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
                "reason": f"no one but the requester ({approval.requested_by}) could answer "
                "(those asked have no account that may answer now, or are the requester); "
                f"asked: {', '.join(asked)}",
            },
        )
    if rule is None:
        assign(session, approval, approval.approvers)
        notify(session, approval, approval.approvers, kind="approval.requested")
        schedule_reminders(session, approval, config, now)
    store.append_event(
        session,
        "approval.requested",
        approval.requested_by,  # as the row holds it (normalised), so the trail agrees
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
            "call": call_record(call),
        },
    )
    if rule is not None:
        decision = standing_rules.used(rule)
        if config.type == "budget":
            decision["approved_amount"] = amount
        # The released call names the rule that released it (its digest is the call's own).
        decide(
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
        assign(session, approval, approval.approvers)
        notify(session, approval, added, kind=kind)
    return added


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
        assign=assign, notify=notify, decide=decide, current_call=current_call, lock=lock_approval
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
        call this answer approves (with its changes, whether or not it decides), or for
        ``allow_when`` (needs ``policies:manage``)."""
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
            # The call this answer approves, with its changes, taken before the vote decides.
            allowed = answer_call(approval, data) if allow_for_days is not None else None
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
                        session, answered, approver_id, allow_for_days, allow_when, call=allowed
                    )
                return answered

    def expire_approval(self, approval_id: str, actor: str = "system") -> ApprovalRequest:
        """Expire a request now (its deadline rule applies): ``approvals:reassign``, and
        the rule of handing a request on (core.approvals.handing_on): an admin forces any
        request's expiry, anyone else only that of one they are asked to answer."""
        with self.db.session() as session:
            store.get_approval(session, approval_id, tenant=tenant_of(session, actor))  # scoped
            approval = lock_approval(session, approval_id)
            check_hand_on(session, approval, actor, doing="force the expiry of")
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
    "DECISIONS",
    "ApprovalEngine",
    "Level",
    "add_approvers",
    "check_vote",
    "levels_for",
    "lock_approval",
    "person_channels_and_recipients",
    "open_approval",
    "record_response",
    "check_allow",
    "expire",
    "cancel_open_approvals",
    "current_call",
    "is_approving",
]
