"""Delegation and backup approvers.

**Out of office.** A person sets "out of office until <date>, delegate to
<person>" (Settings, ``python -m core ooo set``). Until then, a request (a budget level, a
level of its ``escalate_to`` chain) addressed to them by email is addressed to
their delegate instead (followed through a delegate who is away too, never round a loop),
and the trail says so (``approval.delegated``: from, to, until). Groups are
not redirected: their other members still answer. A delegate must have an
account that may answer requests, in the person's own tenant; when a request
is addressed, a delegate who may not answer it then (``permissions.may_answer``:
removed, disabled, a role that no longer answers, another tenant) is skipped
and the person is asked. Setting one's
own needs ``approvals:reassign``; someone else's ``users:manage``.

**Four eyes stay four eyes.** A delegate never holds two votes: when delegation
would leave fewer different people who could answer than a level's threshold
(``[a, b]``, two needed, ``a`` delegating to ``b``; or a delegate who requested
it), the seat is filled by the request's backup, else the first level of its
``escalate_to`` chain, else the admins, and last by the person away after all
(``keep_quorum``; audited as ``approval.quorum_kept``).

**Backup approvers.** ``approval_config.backup: {to: deputy@x.com, after: 50%}``:
when nobody has answered a request once that share of its timeout has passed,
the backup is added to its approvers and notified (``approval.backup_asked``).
The runner asks them (``ask_due_backups``) as it applies timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from core.approvals.deciding import potential_voters
from core.base.errors import InvalidDelegation
from core.base.states import APPROVAL_OPEN
from core.identity.groups import ADMINS_GROUP
from core.identity.permissions import ROLE_ACTIONS, Action, check, may_answer
from core.records import rows as store
from core.store.tables import ApprovalBackup, ApprovalRequest, ApprovalResponse, OutOfOffice, User, utcnow
from core.store.tenancy import tenant_of, tenant_scope

if TYPE_CHECKING:
    from core.definitions.approval import ApprovalConfig
    from core.store.db import Database

# The engine's: lock a request (workflow first), and also ask principals at its level.
LockApproval = Callable[[Session, str], ApprovalRequest]
AddApprovers = Callable[..., list[str]]

# The longest one may be away in one setting.
MAX_AWAY_DAYS = 366
# How many delegates away in turn are followed before the last one is asked anyway.
MAX_HOPS = 5


def _email(value: str) -> str:
    return (value or "").strip().lower()


def ooo_dict(row: OutOfOffice) -> dict[str, Any]:
    return {
        "person": row.person,
        "delegate": row.delegate,
        "until": row.until.isoformat(),
        "set_by": row.set_by,
        "updated_at": row.updated_at.isoformat(),
    }


def _check_who(session: Session, actor: str, person: str) -> None:
    if person == _email(actor):
        check(session, actor, Action.APPROVALS_REASSIGN)
    else:
        check(session, actor, Action.USERS_MANAGE, tenant=tenant_of(session, person))


def set_out_of_office(
    db: Database, actor: str, *, until: datetime, delegate: str, person: str | None = None
) -> dict[str, Any]:
    """``person`` (by default the actor) is away until ``until``; ``delegate`` answers."""
    person, delegate = _email(person or actor), _email(delegate)
    now = utcnow()
    with db.session() as session:
        _check_who(session, actor, person)
        problems = []
        if until.tzinfo is None:
            problems.append("until: give a date with its time zone (UTC)")
        elif until <= now:
            problems.append("until: must be in the future")
        elif until > now + timedelta(days=MAX_AWAY_DAYS):
            problems.append(f"until: at most {MAX_AWAY_DAYS} days from now")
        away, stand_in = session.get(User, person), session.get(User, delegate)
        if away is None:
            problems.append(f"person: {person!r} has no account")
        if delegate == person:
            problems.append("delegate: must be someone else")
        elif stand_in is None:
            problems.append(f"delegate: {delegate!r} has no account")
        elif stand_in.disabled_at is not None:
            problems.append(f"delegate: {delegate}'s account is disabled")
        elif Action.APPROVALS_ANSWER not in ROLE_ACTIONS.get(stand_in.role, frozenset()):
            problems.append(f"delegate: {delegate} (role {stand_in.role}) may not answer requests")
        elif away is not None and (away.tenant or None) != (stand_in.tenant or None):
            problems.append(f"delegate: {delegate} is not in {person}'s tenant")
        if problems:
            raise InvalidDelegation(problems)
        row = session.get(OutOfOffice, person, with_for_update=True)
        if row is None:
            row = OutOfOffice(person=person, created_at=now)
            session.add(row)
        row.delegate, row.until, row.set_by, row.updated_at = delegate, until, _email(actor), now
        session.flush()
        store.append_event(session, "delegation.set", actor, data=ooo_dict(row))
        return ooo_dict(row)


def clear_out_of_office(db: Database, actor: str, person: str | None = None) -> bool:
    """Back in the office: requests reach ``person`` again. False when none was set."""
    person = _email(person or actor)
    with db.session() as session:
        _check_who(session, actor, person)
        row = session.get(OutOfOffice, person, with_for_update=True)
        if row is None:
            return False
        store.append_event(session, "delegation.cleared", actor, data=ooo_dict(row))
        session.delete(row)
        return True


def list_out_of_office(db: Database, actor: str) -> list[dict[str, Any]]:
    """Current settings of the people ``actor`` sees (their tenant's; a platform user all)."""
    with db.read() as session:
        check(session, actor, Action.AUDIT_READ)
        query = tenant_scope(tenant_of(session, actor)).apply(
            select(OutOfOffice).join(User, User.email == OutOfOffice.person), User.tenant
        )
        rows = session.scalars(query.where(OutOfOffice.until > utcnow()).order_by(OutOfOffice.person)).all()
        return [ooo_dict(r) for r in rows]


def out_of_office_of(db: Database, person: str) -> dict[str, Any] | None:
    """``person``'s current setting (for their Settings page), or None."""
    with db.read() as session:
        row = session.get(OutOfOffice, _email(person))
        return ooo_dict(row) if row is not None and row.until > utcnow() else None


# -- the engine's side -------------------------------------------------------------------------


def _stand_in(
    session: Session, approval: ApprovalRequest, principal: str, now: datetime
) -> tuple[str, datetime | None]:
    """Who answers for ``principal`` now (themselves, or the delegate at the end of the
    chain of people away), and until when the last one away is."""
    current, seen, until = principal, {principal}, None
    for _ in range(MAX_HOPS):
        row = session.get(OutOfOffice, current) if "@" in current else None
        if row is None or row.until <= now or row.delegate in seen:
            break
        stand_in = session.get(User, row.delegate)
        if stand_in is None or not may_answer(stand_in, approval.tenant):
            # Never hand a request to someone who cannot answer it now (removed,
            # disabled, a role that no longer answers, another tenant): the person
            # (or the last delegate who may) is asked instead.
            break
        current, until = row.delegate, row.until
        seen.add(current)
    return current, until


def delegate_approvers(session: Session, approval: ApprovalRequest, approvers: list[str]) -> list[str]:
    """``approvers`` with each person away replaced by their delegate (audited)."""
    now = utcnow()
    result: list[str] = []
    for principal in approvers:
        current, until = _stand_in(session, approval, principal, now)
        if current != principal:
            store.append_event(
                session,
                "approval.delegated",
                "system:delegation",
                workflow_id=approval.workflow_id,
                approval_id=approval.id,
                step_name=approval.step_name,
                data={
                    "from": principal,
                    "to": current,
                    "until": until.isoformat() if until else None,
                    "level": approval.level,
                },
            )
        result.append(current)
    return list(dict.fromkeys(result))


def keep_quorum(
    session: Session, approval: ApprovalRequest, config: ApprovalConfig, asked: list[str]
) -> None:
    """Four eyes stay four eyes: when delegation (``delegate_approvers``, which made
    ``approval.approvers`` of ``asked``) leaves fewer different people who could answer
    than the level's threshold (someone away delegates to a person asked already, or to
    the requester, who may not approve), the seats lost are filled, never merged: the
    delegate does not get two votes. Asked in turn, until enough people could answer:
    the request's backup, the first level of its escalation chain, the admins, and
    last the person away themselves (nobody else could take their seat). Audited as
    ``approval.quorum_kept`` (who was away, who was asked instead, why); the caller
    assigns and notifies the approvers. A shortfall delegation did not cause (a level
    that names too few people who may answer) is left as it was."""

    def voters(principals: list[str]) -> set[str]:
        found = potential_voters(session, approval, principals)
        if not config.allow_self_approval:
            found.discard(approval.requested_by)
        return found

    asked = list(dict.fromkeys(asked))
    if set(asked) == set(approval.approvers):
        return  # nobody asked is away: nothing was merged (and no users are read)
    now_voters = voters(approval.approvers)
    lost = len(voters(asked)) - len(now_voters)
    if len(now_voters) >= approval.threshold or lost <= 0:
        return
    now = utcnow()
    away = [p for p in asked if p not in approval.approvers]
    candidates = [_email(config.backup.to) if config.backup is not None else ""]
    candidates += [_email(p) if "@" in p else p.strip().lower() for p in (config.escalate_to or [[]])[0]]
    candidates += [ADMINS_GROUP, *away]
    added: list[str] = []
    for candidate in dict.fromkeys(c for c in candidates if c):
        if len(now_voters) >= approval.threshold:
            break
        if candidate in approval.approvers:
            continue
        more = voters([*approval.approvers, candidate])
        if len(more) > len(now_voters):
            approval.approvers = [*approval.approvers, candidate]
            added.append(candidate)
            now_voters = more
    why = []
    for person in away:
        delegate = _stand_in(session, approval, person, now)[0]
        if delegate == approval.requested_by and not config.allow_self_approval:
            why.append(
                f"{person} is away and delegates to {delegate}, who requested it and may not approve it"
            )
        else:
            why.append(f"{person} is away and delegates to {delegate}, who is asked already")
    short = approval.threshold - len(now_voters)
    instead = [p for p in added if p not in away]
    back = [p for p in added if p in away]
    then = [f"{', '.join(instead)} asked in their place"] if instead else []
    if back:
        then.append(f"nobody else could take the seat, so {', '.join(back)} asked after all")
    if short > 0:
        then.append(f"nobody else could be asked: {short} approval(s) short")
    reason = (
        f"{'; '.join(why)}. {approval.threshold} approvals need {approval.threshold} "
        f"different people: {'; '.join(then)}."
    )
    store.append_event(
        session,
        "approval.quorum_kept",
        "system:delegation",
        workflow_id=approval.workflow_id,
        approval_id=approval.id,
        step_name=approval.step_name,
        data={
            "level": approval.level,
            "threshold": approval.threshold,
            "away": away,
            "asked": added,
            "short": max(short, 0),
            "reason": reason,
        },
    )


def plan_backup(session: Session, approval: ApprovalRequest, config: ApprovalConfig) -> None:
    """Remember when to ask the request's backup approver, if it has one."""
    if config.backup is None or not config.timeout:
        return
    session.add(
        ApprovalBackup(
            approval_id=approval.id,
            backup_to=_email(config.backup.to)
            if "@" in config.backup.to
            else config.backup.to.strip().lower(),
            due_at=approval.created_at + timedelta(seconds=config.timeout * config.backup.after),
        )
    )


def ask_backup(
    session: Session, approval: ApprovalRequest, backup: ApprovalBackup, add_approvers: AddApprovers
) -> bool:
    """Add the backup to a request nobody has answered yet (caller holds its lock);
    ``add_approvers`` is the engine's (it asks, assigns and notifies)."""
    backup.asked_at = utcnow()
    if approval.status != APPROVAL_OPEN or approval.level != 0:
        return False  # decided, or an earlier approver answered and it moved on
    answered = session.scalar(
        select(ApprovalResponse.id).where(ApprovalResponse.approval_id == approval.id).limit(1)
    )
    if answered is not None or backup.backup_to in approval.approvers:
        return False
    share = round((backup.due_at - approval.created_at).total_seconds())
    asked = add_approvers(session, approval, [backup.backup_to], kind="approval.backup")
    store.append_event(
        session,
        "approval.backup_asked",
        "system:backup",
        workflow_id=approval.workflow_id,
        approval_id=approval.id,
        step_name=approval.step_name,
        data={
            "backup": asked,
            "after_seconds": share,
            "unanswered": [a for a in approval.approvers if a not in asked],
        },
    )
    return True


def due_backups(now: datetime | ColumnElement[datetime]) -> Select[str]:
    """Backups not asked yet whose time has come by ``now`` (their requests' ids):
    ``ask_due_backups``'s selection, also probed by an idle runner."""
    return select(ApprovalBackup.approval_id).where(
        ApprovalBackup.asked_at.is_(None), ApprovalBackup.due_at <= now
    )


def ask_due_backups(db: Database, limit: int, *, lock: LockApproval, add_approvers: AddApprovers) -> int:
    """Ask the backups whose time has come; returns how many were asked. ``lock`` and
    ``add_approvers`` are the engine's (passed in: the engine calls this module)."""
    with db.read() as session:
        due = session.scalars(due_backups(utcnow()).order_by(ApprovalBackup.due_at).limit(limit)).all()
    asked = 0
    for approval_id in due:
        with db.session() as session:
            approval = lock(session, approval_id)
            backup = session.get(ApprovalBackup, approval_id, with_for_update=True)
            if backup is None or backup.asked_at is not None:
                continue  # another runner asked
            asked += ask_backup(session, approval, backup, add_approvers)
    return asked


def next_backup(db: Database) -> datetime | None:
    """When the next backup is due (the runner wakes for it)."""
    from sqlalchemy import func

    with db.read() as session:
        return session.scalar(
            select(func.min(ApprovalBackup.due_at)).where(ApprovalBackup.asked_at.is_(None))
        )


__all__ = [
    "ask_backup",
    "ask_due_backups",
    "due_backups",
    "clear_out_of_office",
    "delegate_approvers",
    "keep_quorum",
    "list_out_of_office",
    "next_backup",
    "ooo_dict",
    "out_of_office_of",
    "plan_backup",
    "set_out_of_office",
]
