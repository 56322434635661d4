"""Who may hand a request on: reassign it, or force its expiry (``approvals:reassign``).

One rule for both (core.approvals.reassign and ``ApprovalEngine.expire_approval``):
an admin (of the request's tenant, or the platform) or a system actor may hand on
any open request; anyone else only one they, or one of their groups, are asked to
answer now. Forcing the expiry of a request someone else is asked would let a
person decide it by its ``on_expiry`` (approve, reject, escalate) without being
asked: a separation of duties the role alone does not give.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from core.identity.groups import normalise_principal, principals_of
from core.identity.permissions import Action, allowed, check, principal, refuse

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class AskedRequest(Protocol):
    """What the rule reads of a request (a row, or the inbox's detail of one)."""

    @property
    def id(self) -> str: ...
    @property
    def workflow_id(self) -> str | None: ...
    @property
    def tenant(self) -> str | None: ...
    @property
    def approvers(self) -> list[str]: ...


def may_hand_on(session: Session, approval: AskedRequest, actor: str) -> bool:
    """Whether ``actor`` may hand this request on (the role's permission is checked apart)."""
    who = principal(session, normalise_principal(actor))
    if who.kind == "system" or (who.kind == "account" and who.role == "admin" and not who.disabled):
        return True
    return bool(set(principals_of(session, who.actor)) & set(approval.approvers))


def can_hand_on(session: Session, approval: AskedRequest, actor: str) -> bool:
    """Both halves of the rule, for showing a control (records nothing)."""
    return allowed(
        session, actor, Action.APPROVALS_REASSIGN, workflow=approval.workflow_id, tenant=approval.tenant
    ) and may_hand_on(session, approval, actor)


def check_hand_on(session: Session, approval: AskedRequest, actor: str, *, doing: str) -> None:
    """Refuse (``NotAuthorized`` and a ``permission.refused`` event) unless ``actor`` may
    hand the request on: ``approvals:reassign`` on its workflow and tenant, then being
    asked it (reason ``not asked to answer it``) unless an admin or a system actor.
    ``doing`` names the act in the message (``reassign``, ``force the expiry of``)."""
    check(
        session,
        actor,
        Action.APPROVALS_REASSIGN,
        workflow=approval.workflow_id,
        tenant=approval.tenant,
        approval_id=approval.id,
    )
    if may_hand_on(session, approval, actor):
        return
    who = principal(session, normalise_principal(actor))
    refuse(
        session,
        who.actor,
        Action.APPROVALS_REASSIGN,
        "not asked to answer it",
        role=who.role,
        workflow_id=approval.workflow_id,
        approval_id=approval.id,
        message=f"{who.actor} may {doing} only a request they are asked to answer "
        f"(asked: {', '.join(approval.approvers)}); an admin may {doing} any.",
    )


__all__ = ["can_hand_on", "check_hand_on", "may_hand_on"]
