"""Answers that decide at most once, and only for what they were issued for.

A Slack click, a Slack modal, an inbound webhook delivery and an emailed link
each carry an answer that could be captured and sent again. Each has a key
(the Slack action's timestamp and who clicked, the modal's view id, the
delivery's ``webhook-id``, the link's token id) that is spent in
``used_tokens`` in the same transaction as the vote: a second use is refused
(``AnswerReplayed``) and writes nothing, and a refused answer leaves the key
unspent. An answer also names the level of the request it was issued for
(and, for a guarded call, the digest of the call it showed): once the request
has moved on to another level, or the call has changed, it is refused
(``AnswerOutdated``) instead of counting as a vote on what the person never
saw.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.approvals import standing_rules
from core.base.errors import AnswerOutdated, AnswerReplayed
from core.records import rows as store
from core.store.tables import ApprovalRequest, UsedToken, utcnow

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)


class _Any:
    """Any call digest will do (the answer names none)."""

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()


def once_key(kind: str, *parts: str) -> str:
    """A ``used_tokens`` id for one answer: SHA-256 of its kind and parts (64 hex digits,
    never equal to an emailed link's 32-digit token id)."""
    text = "\x1f".join([kind, *parts])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def is_spent(session: Session, key: str) -> bool:
    return session.get(UsedToken, key) is not None


def spend(session: Session, key: str, what: str) -> None:
    """Spend ``key`` inside the caller's transaction; a second use raises ``AnswerReplayed``."""
    if is_spent(session, key):
        raise AnswerReplayed(f"{what} was already used: it decided once and decides nothing more.")
    session.add(UsedToken(token_id=key, used_at=utcnow()))
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent copy won the race
        raise AnswerReplayed(f"{what} was already used: it decided once and decides nothing more.") from exc


def check_issued_for(
    approval: ApprovalRequest, *, what: str, level: int | None = None, digest: Any = ANY
) -> None:
    """Refuse an answer issued for another level of the request, or another call."""
    from core.approvals.engine import current_call

    if approval.status != "pending":
        return  # the engine says it is closed, by whom
    if level is not None and approval.level != level:
        raise AnswerOutdated(
            f"{what} was issued for level {level + 1} of this request, which is at level "
            f"{approval.level + 1} now: it decides nothing. Answer the request as it is now "
            "from its latest message or the dashboard."
        )
    if digest is not ANY and digest != (current_call(approval) or {}).get("digest"):
        raise AnswerOutdated(
            f"{what} was issued for a call that has changed since (an earlier level released "
            "another one): it decides nothing. Answer the request as it is now from its latest "
            "message or the dashboard."
        )


def respond_once(
    db: Database,
    *,
    key: str | None,
    what: str,
    approval_id: str,
    approver: str,
    decision: str,
    data: dict[str, Any] | None = None,
    comment: str = "",
    channel: str,
    level: int | None = None,
    digest: Any = ANY,
    allow_for_days: float | None = None,
    allow_when: str | None = None,
) -> ApprovalRequest:
    """Record one answer that may decide only once (``key``) and only for ``level``
    (and the call ``digest``), in one transaction with spending the key. Without a
    key (an API token's answer, which is no captured delivery) only the level and
    call are checked.

    The engine's own checks apply as for any answer; they run once before any
    lock is taken, as ``ApprovalEngine.respond_to_approval`` does; so does
    ``allow_for_days`` ("approve, and allow calls like this": the standing rule
    is made in the same transaction).
    """
    from core.approvals.engine import check_allow, check_vote, lock_approval, record_response
    from core.approvals.voting import answer_call

    with db.read() as session:
        if key is not None and is_spent(session, key):
            raise AnswerReplayed(f"{what} was already used: it decided once and decides nothing more.")
        approval = store.get_approval(session, approval_id)
        check_issued_for(approval, what=what, level=level, digest=digest)
        check_vote(session, approval, approver=approver, decision=decision, data=data, comment=comment)
        if allow_for_days is not None:
            check_allow(session, approval, approver, decision, allow_for_days, allow_when)
    with (
        structlog.contextvars.bound_contextvars(approval_id=approval_id, actor=approver),
        db.session() as session,
    ):
        approval = lock_approval(session, approval_id)
        if key is not None:
            spend(session, key, what)
        check_issued_for(approval, what=what, level=level, digest=digest)
        allowed = answer_call(approval, data) if allow_for_days is not None else None  # before it decides
        answered = record_response(
            session,
            approval,
            approver=approver,
            decision=decision,
            data=data,
            comment=comment,
            channel=channel,
        )
        log.info(
            "approval response recorded",
            decision=decision,
            channel=channel,
            status=answered.status,
            once=True,
        )
        if allow_for_days is not None:
            standing_rules.rule_from_answer(
                session, answered, approver, allow_for_days, allow_when, call=allowed
            )
        return answered


__all__ = ["ANY", "once_key", "spend", "check_issued_for", "respond_once"]
