"""What a request's deadline does: escalation chains, the final expiry, veto windows.

``escalate_to`` is a chain of levels (``[manager, director, admins]``): when
the request's timeout passes, the next level takes over (its approvers, a
threshold of 1, a fresh timeout and its own reminders); when the last
level's timeout passes, ``on_expiry`` decides: ``reject`` (the default: the
request fails closed as ``expired``) or ``approve``, which releases exactly
the call the approvers were asked about through ``core.definitions.calls.released_call``
and records it in the ``approval.expired`` and ``approval.decided`` events. What an
earlier budget level allowed stands: the lowest amount approved so far is the decision's
``approved_amount`` and what runs, and the outcome is ``modified`` when an earlier level
lowered the amount or changed the call.
A veto window's end releases its call (core.approvals.veto).

Forcing the expiry early (``approvals expire``) never releases a call: it is
refused, for everyone, where the rule would approve (``on_expiry: approve``,
a veto window); it still escalates, or expires a request that fails closed.

``expire_due`` is the runners' sweep. It re-reads each request under its
locks (workflow, then request) and acts only when the deadline has really
passed, so two runners racing on one request escalate it once, not twice.

The engine imports this module, so what it needs of the engine (assigning,
notifying, deciding, locking) is passed in as ``EngineSteps``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from core.approvals.delegation import delegate_approvers, keep_quorum
from core.approvals.reminders import schedule_reminders
from core.approvals.veto import is_veto, release_after_window
from core.base.errors import ApprovalClosed, InvalidTransition
from core.base.states import APPROVAL_OPEN
from core.definitions.approval import ApprovalConfig
from core.definitions.calls import released_call
from core.records import rows as store
from core.store.tables import ApprovalRequest, utcnow

if TYPE_CHECKING:
    from core.store.db import Database

# How long an escalated level has when the request set no timeout (a forced expiry).
DEFAULT_LEVEL_SECONDS = 86400
# Who decides a request its deadline decided.
TIMEOUT_ACTOR = "system:timeout"
# A budget's approved amount in a decision's data.
AMOUNT = "approved_amount"


@dataclass(frozen=True)
class EngineSteps:
    """The engine's own steps a deadline takes (core.approvals.engine passes them)."""

    # (session, approval, approvers): who may answer now
    assign: Callable[[Session, ApprovalRequest, list[str]], None]
    # (session, approval, recipients, *, kind): queue the messages
    notify: Callable[..., None]
    # (session, approval, outcome, actor, data, *, released=...): close the request
    decide: Callable[..., None]
    # (approval): the call the current approvers are asked about
    current_call: Callable[[ApprovalRequest], dict[str, Any] | None]
    # (session, approval_id): the request, locked workflow first
    lock: Callable[[Session, str], ApprovalRequest]


def escalated_kind(number: int) -> str:
    """Outbox kind of the n-th escalation's messages (each level's are its own rows)."""
    return "approval.escalated" if number <= 1 else f"approval.escalated.{number}"


def apply_expiry(
    session: Session, approval: ApprovalRequest, actor: str, steps: EngineSteps, *, forced: bool = False
) -> str:
    """Apply the request's deadline rule; returns what happened (``escalated``,
    ``approved``, ``modified``: approved on expiry after an earlier level changed the
    call or lowered the amount, or ``expired``). The caller holds the locks."""
    if approval.status != APPROVAL_OPEN:
        raise ApprovalClosed(f"Approval request {approval.id} is already {approval.status}.")
    config = ApprovalConfig.model_validate(approval.config)
    if is_veto(config):
        if forced:  # ending a window early would run the call without anyone approving it
            raise InvalidTransition(
                f"Approval request {approval.id} is a veto window; it ends by itself at "
                f"{approval.expires_at.isoformat() if approval.expires_at else 'its deadline'}. "
                "Approve it to run the call now, or reject it to veto."
            )
        return release_after_window(session, approval, actor, steps.current_call(approval), steps.decide)
    chain = config.escalate_to
    if config.on_timeout == "escalate" and approval.escalations < len(chain):
        return _escalate(session, approval, actor, steps, config, forced=forced)
    action = config.expiry_action
    if forced and action == "approve":
        # Only the deadline itself approves: forced early, it would be a release nobody gave.
        raise InvalidTransition(_forced_release_refusal(approval, steps.current_call(approval) is not None))
    call = steps.current_call(approval)
    released = released_call(call, None) if call is not None and action == "approve" else None
    outcome, decision = _approved_on_expiry(approval, released) if action == "approve" else ("expired", {})
    store.append_event(
        session,
        "approval.expired",
        actor,
        workflow_id=approval.workflow_id,
        approval_id=approval.id,
        step_name=approval.step_name,
        data={
            "on_timeout": config.on_timeout,
            "on_expiry": action,
            "forced": forced,
            "escalations": approval.escalations,
            "released_call": {k: released[k] for k in ("tool", "arguments", "digest")}
            if released is not None
            else None,
            **({AMOUNT: decision[AMOUNT]} if AMOUNT in decision else {}),
        },
    )
    if action == "approve":
        steps.decide(session, approval, outcome, TIMEOUT_ACTOR, decision, released=released)
        return outcome
    steps.decide(session, approval, "expired", TIMEOUT_ACTOR, {"reason": "expired", "on_expiry": "reject"})
    return "expired"


def _approved_on_expiry(
    approval: ApprovalRequest, released: dict[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """The outcome and decision data of ``on_expiry: approve``: what the approvers were
    asked about now, as the earlier levels left it. A budget keeps the lowest amount
    approved so far (an earlier level's cut; else the amount requested), so the record,
    a later step reading ``approval.data.approved_amount`` and what runs agree; the
    outcome is ``modified`` when that amount or the released call differs from the
    request, as it is when a person approves after such a level."""
    earlier = approval.decision_data or {}
    data: dict[str, Any] = {"reason": "approved on expiry", "on_expiry": "approve"}
    modified = bool(earlier.get("modified"))
    if approval.approval_type == "budget":
        requested = approval.context_data.get("amount")
        amount = earlier.get(AMOUNT) if earlier.get(AMOUNT) is not None else requested
        if amount is not None:
            data[AMOUNT] = float(amount)
            modified = modified or (requested is not None and float(amount) < float(requested))
    proposed = approval.proposed_call
    if released is not None and proposed is not None and released["digest"] != proposed["digest"]:
        modified = True
    return ("modified" if modified else "approved"), data


def _forced_release_refusal(approval: ApprovalRequest, guards_call: bool) -> str:
    """Why a forced expiry whose rule is ``on_expiry: approve`` is refused, for everyone."""
    what = "run the call" if guards_call else "approve it"
    ends = (
        f"its deadline does that by itself at {approval.expires_at.isoformat()}"
        if approval.expires_at is not None
        else "it has no deadline of its own"
    )
    return (
        f"Approval request {approval.id} is approved by its deadline rule (on_expiry: approve), so "
        f"forcing its expiry would {what} without anyone approving it; {ends}. "
        "Approve it to release it now, or reject it."
    )


def _escalate(
    session: Session,
    approval: ApprovalRequest,
    actor: str,
    steps: EngineSteps,
    config: ApprovalConfig,
    *,
    forced: bool,
) -> str:
    """The next level of the chain takes over: its approvers, a fresh timeout, its reminders."""
    chain = config.escalate_to
    level = chain[approval.escalations]
    approval.escalations += 1
    # A level's person who is out of office is replaced by their delegate, as on a
    # request's first level (core.approvals.delegation; audited there).
    asked = list(dict.fromkeys(a.strip().lower() for a in level))
    approval.approvers = delegate_approvers(session, approval, asked)
    approval.threshold = 1
    keep_quorum(session, approval, config, asked)
    now = utcnow()
    approval.expires_at = now + timedelta(seconds=config.timeout or DEFAULT_LEVEL_SECONDS)
    approval.updated_at = now
    steps.assign(session, approval, approval.approvers)
    steps.notify(session, approval, approval.approvers, kind=escalated_kind(approval.escalations))
    schedule_reminders(session, approval, config, now)
    store.append_event(
        session,
        "approval.escalated",
        actor,
        workflow_id=approval.workflow_id,
        approval_id=approval.id,
        step_name=approval.step_name,
        data={
            "escalated_to": approval.approvers,
            "forced": forced,
            "escalation": approval.escalations,
            "of": len(chain),
            "expires_at": approval.expires_at.isoformat(),
        },
    )
    return "escalated"


def due_expiries(now: datetime | ColumnElement[datetime]) -> Select[str]:
    """Open requests whose deadline has passed by ``now`` (their ids): ``expire_due``'s
    selection, also probed by an idle runner (core.engine.runner.idle_probe)."""
    return select(ApprovalRequest.id).where(
        ApprovalRequest.status == APPROVAL_OPEN, ApprovalRequest.expires_at <= now
    )


def expire_due(db: Database, actor: str, steps: EngineSteps, limit: int = 100) -> int:
    """Apply the deadline rule to open requests whose deadline has passed; how many."""
    with db.read() as session:
        due = session.scalars(due_expiries(utcnow()).order_by(ApprovalRequest.expires_at).limit(limit)).all()
    done = 0
    for approval_id in due:
        with db.session() as session:
            approval = steps.lock(session, approval_id)
            if (
                approval.status != APPROVAL_OPEN
                or approval.expires_at is None
                or approval.expires_at > utcnow()
            ):
                continue  # another runner got there first (decided, or escalated on)
            apply_expiry(session, approval, actor, steps)
            done += 1
    return done


__all__ = ["TIMEOUT_ACTOR", "EngineSteps", "apply_expiry", "due_expiries", "escalated_kind", "expire_due"]
