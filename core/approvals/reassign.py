"""Reassign an open request: its current level goes to other approvers, audited.

An admin (or a system actor) may hand any open request to anyone who could
answer it; an approver may hand on only a request they are asked now (a
delegation; core.approvals.handing_on, the rule forcing an expiry shares). The
new approvers are accounts that may answer it now (not disabled, a role that answers, of the request's tenant:
``identity.permissions.may_answer``), or groups with at least one such member. Votes already cast
at the level stay; the threshold is unchanged, so a reassignment that would
leave too few possible voters to reach it is refused. The assignee rows, the
notifications to the new approvers and an ``approval.reassigned`` event
(approvers before and after, the reason) are written in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.approvals.deciding import APPROVAL_OPEN, assign, check_open, notify, potential_voters
from core.approvals.engine import lock_approval
from core.approvals.handing_on import can_hand_on, check_hand_on
from core.base.errors import Invalid
from core.base.storable import holds_nul
from core.identity.groups import groups_of, normalise_principal
from core.identity.permissions import may_answer
from core.records import rows as store
from core.store.tables import ApprovalRequest, User, utcnow
from core.store.tenancy import tenant_of

if TYPE_CHECKING:
    from core.approvals.inbox import ApprovalDetail
    from core.store.db import Database

REASSIGNED_EVENT = "approval.reassigned"
MAX_APPROVERS = 50
MAX_REASON = 2000


class InvalidReassignment(Invalid):
    """The reassignment is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("The reassignment is invalid: " + "; ".join(self.problems))


def _targets(session: Session, approval: ApprovalRequest, to: list[str]) -> list[str]:
    """The new approvers, normalised and checked; InvalidResponse naming each bad one."""
    names = list(dict.fromkeys(normalise_principal(t) for t in to if t and t.strip()))
    if not names:
        raise InvalidReassignment(["to: name at least one approver (an email or a group)"])
    if len(names) > MAX_APPROVERS:
        raise InvalidReassignment([f"to: at most {MAX_APPROVERS} approvers"])
    # Accounts that may answer it now (permissions.may_answer: not disabled, a role that
    # answers, its tenant), the rule potential_voters counts by; an address without an
    # account is no target.
    users = [u for u in session.scalars(select(User)) if may_answer(u, approval.tenant)]
    answering = {u.email for u in users}
    groups = {g for u in users for g in groups_of(u)}
    problems = []
    for name in names:
        if holds_nul(name):
            problems.append("to: a name holds a NUL character")
        elif "@" in name and name not in answering:
            problems.append(f"to: {name} has no account that may answer this request")
        elif "@" not in name and name not in groups:
            problems.append(f"to: no one who may answer this request is in the group {name!r}")
    if problems:
        raise InvalidReassignment(problems)
    return names


def can_reassign(db: Database, approval: ApprovalRequest | ApprovalDetail, actor: str) -> bool:
    """Whether ``actor`` may reassign this open request (for showing the form; records
    nothing): the rules ``reassign`` refuses by, short of the new approvers it is given."""
    if approval.status != APPROVAL_OPEN or (
        approval.expires_at is not None and approval.expires_at <= utcnow()
    ):
        return False
    with db.read() as session:
        return can_hand_on(session, approval, actor)


def reassign(
    db: Database, approval_id: str, actor: str, to: list[str], *, reason: str = ""
) -> ApprovalRequest:
    """Give the request's current level to ``to`` (emails or groups) instead of its approvers."""
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON or holds_nul(reason):
        raise InvalidReassignment([f"reason: at most {MAX_REASON} characters, without NUL"])
    with db.session() as session:
        store.get_approval(session, approval_id, tenant=tenant_of(session, actor))  # scoped
        approval = lock_approval(session, approval_id)
        check_hand_on(session, approval, actor, doing="reassign")
        check_open(approval, utcnow())
        who = normalise_principal(actor)
        before = list(approval.approvers)
        names = _targets(session, approval, to)
        if names == before:
            raise InvalidReassignment(["to: these are already the request's approvers"])
        approval.approvers = names
        voters = potential_voters(session, approval) - {approval.requested_by}
        if len(voters) < approval.threshold:
            raise InvalidReassignment(
                [
                    f"to: {approval.threshold} approvals are needed, and only {len(voters)} of "
                    f"these people could give one"
                ]
            )
        assign(session, approval, names)
        notify(session, approval, [n for n in names if n not in before], kind="approval.requested")
        store.append_event(
            session,
            REASSIGNED_EVENT,
            who,
            workflow_id=approval.workflow_id,
            approval_id=approval.id,
            step_name=approval.step_name,
            before={"approvers": before},
            after={"approvers": names},
            data={"reason": reason, "level": approval.level + 1},
        )
        session.flush()
        return approval
