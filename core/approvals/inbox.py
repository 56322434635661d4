"""Read-only queries for the inbox: a person's pending requests with their
filters, counts and facets, a request's detail, and what is urgent. The Monitor
page's aggregates are in ``core.approvals.monitor``.

Every function is one or a few queries over indexed columns, so it stays fast
with 100,000 workflows: nothing here loads rows to count them in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import Session, aliased

from core.base.states import APPROVAL_OPEN
from core.base.storable import holds_nul
from core.identity.groups import principals_of
from core.outbox.settings import CHANNELS
from core.store.tables import (
    ApprovalAssignee,
    ApprovalRequest,
    ApprovalResponse,
    Notification,
    Workflow,
    utcnow,
)
from core.store.tenancy import tenant_of, tenant_scope

if TYPE_CHECKING:
    from core.store.db import Database

__all__ = [
    "EXPIRING_SOON_WITHIN",
    "URGENT_WITHIN",
    "ApprovalDetail",
    "InboxFilter",
    "InboxItem",
    "InboxSummary",
    "channels_of",
    "inbox",
    "inbox_summary",
    "is_asked",
    "is_urgent",
    "not_answered_by",
    "time_left",
    "workflow_names",
]


# How soon a deadline makes a request urgent (shown in red) and "expiring soon" (the
# inbox's count): the one definition every view uses.
URGENT_WITHIN = timedelta(hours=1)


EXPIRING_SOON_WITHIN = timedelta(hours=24)


def is_urgent(expires_at: datetime | None, now: datetime | None = None) -> bool:
    return expires_at is not None and expires_at - (now or utcnow()) < URGENT_WITHIN


@dataclass(frozen=True)
class InboxItem:
    """One open request as an inbox row shows it (a read model: no ORM row leaves core)."""

    id: str
    title: str
    approval_type: str
    workflow_id: str | None
    step_name: str | None
    requested_by: str
    created_at: datetime
    expires_at: datetime | None
    approvers: tuple[str, ...]

    @classmethod
    def of(cls, row: ApprovalRequest) -> InboxItem:
        return cls(
            row.id,
            row.title,
            row.approval_type,
            row.workflow_id,
            row.step_name,
            row.requested_by,
            row.created_at,
            row.expires_at,
            tuple(row.approvers or ()),
        )


@dataclass(frozen=True)
class ApprovalDetail:
    """One request as its Approval page needs it (a read model: no ORM row leaves core)."""

    id: str
    title: str
    approval_type: str
    status: str
    level: int
    workflow_id: str | None
    step_name: str | None
    tenant: str | None
    approvers: list[str]
    requested_by: str
    expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    decision_data: dict[str, Any] | None
    config: dict[str, Any]
    response_schema: dict[str, Any]
    ui_schema: dict[str, Any]

    @classmethod
    def of(cls, row: ApprovalRequest) -> ApprovalDetail:
        return cls(
            row.id,
            row.title,
            row.approval_type,
            row.status,
            row.level,
            row.workflow_id,
            row.step_name,
            row.tenant,
            list(row.approvers or []),
            row.requested_by,
            row.expires_at,
            row.decided_by,
            row.decided_at,
            dict(row.decision_data) if row.decision_data is not None else None,
            dict(row.config or {}),
            dict(row.response_schema or {}),
            dict(row.ui_schema or {}),
        )


@dataclass
class InboxFilter:
    workflow_id: str | None = None
    approval_type: str | None = None
    channel: str | None = None


APPROVAL_TYPES = ("binary", "form", "budget")


@dataclass
class InboxSummary:
    total: int
    expiring_soon: int
    # The workflows of the most urgent requests: id -> (name, requests among them).
    by_workflow: dict[str, tuple[str, int]] = field(default_factory=dict)
    types: tuple[str, ...] = APPROVAL_TYPES
    channels: tuple[str, ...] = CHANNELS
    # How many of the waiting requests are of each type (types with none left out).
    by_type: dict[str, int] = field(default_factory=dict)


# Facets stay bounded however many requests wait: the workflow filter offers
# the workflows of the most urgent requests, not all of them.
WORKFLOW_FACETS = 50


def not_answered_by(email: str, approval_id: Any) -> ColumnElement[bool]:
    """The request ``approval_id`` (a column) has no vote of ``email`` at its current level:
    it still waits for them. A probe of the votes' (request, approver, level) index per
    request, which finds nothing for nearly every row; the request's level is read only
    for a vote found."""
    voted_at = aliased(ApprovalRequest)
    return ~exists().where(
        ApprovalResponse.approval_id == approval_id,
        ApprovalResponse.approver == email,
        voted_at.id == ApprovalResponse.approval_id,
        voted_at.level == ApprovalResponse.level,
    )


def _inbox_query(
    principals: list[str], flt: InboxFilter, *columns: Any, tenant: str | None = None
) -> Select[Any]:
    """The user's open requests that still wait for them, selecting only ``columns``."""
    query = (
        tenant_scope(tenant)
        .apply(select(*columns), ApprovalRequest.tenant)
        .where(
            ApprovalRequest.status == APPROVAL_OPEN,
            ApprovalRequest.id.in_(
                select(ApprovalAssignee.approval_id).where(ApprovalAssignee.principal.in_(principals))
            ),
            not_answered_by(principals[0], ApprovalRequest.id),
        )
    )
    if flt.workflow_id:
        query = query.where(ApprovalRequest.workflow_id == flt.workflow_id)
    if flt.approval_type:
        query = query.where(ApprovalRequest.approval_type == flt.approval_type)
    if flt.channel:
        query = query.where(
            exists().where(
                Notification.approval_id == ApprovalRequest.id, Notification.channel == flt.channel
            )
        )
    return query


def _urgent_ids(
    session: Session,
    principals: list[str],
    flt: InboxFilter,
    *,
    limit: int,
    offset: int,
    tenant: str | None = None,
) -> list[str]:
    """Ids in inbox order: soonest deadline first, then those without one, newest first.

    Two walks over the assignee indexes (which carry each request's deadline
    and age), each stopping at the end of the page, so a page costs the same
    with ten or ten thousand waiting requests.
    """
    want = limit + offset
    assignee = ApprovalAssignee
    dated: dict[str, tuple[Any, Any]] = {}
    undated: dict[str, Any] = {}
    for principal in principals:
        base = select(assignee.approval_id, assignee.expires_at, assignee.created_at).where(
            assignee.principal == principal, not_answered_by(principals[0], assignee.approval_id)
        )
        if tenant is not None:
            # A tenant's user: only that tenant's requests, even for a group
            # name another tenant uses too (core.store.tenancy).
            base = base.join(ApprovalRequest, ApprovalRequest.id == assignee.approval_id).where(
                ApprovalRequest.tenant == tenant
            )
        if flt.workflow_id or flt.approval_type or flt.channel:
            base = base.where(
                assignee.approval_id.in_(_inbox_query(principals, flt, ApprovalRequest.id, tenant=tenant))
            )
        for approval_id, expires_at, created_at in session.execute(
            base.where(assignee.expires_at.is_not(None))
            .order_by(assignee.expires_at, assignee.created_at.desc())
            .limit(want)
        ):
            dated[approval_id] = (expires_at, created_at)
        for approval_id, _, created_at in session.execute(
            base.where(assignee.expires_at.is_(None)).order_by(assignee.created_at.desc()).limit(want)
        ):
            undated[approval_id] = created_at
    epoch = datetime.min.replace(tzinfo=utcnow().tzinfo)
    ordered = sorted(dated, key=lambda i: (dated[i][0], -(dated[i][1] or epoch).timestamp(), i))
    ordered += sorted(undated, key=lambda i: (-(undated[i] or epoch).timestamp(), i))
    return ordered[offset : offset + limit]


def inbox(
    db: Database, user: str, flt: InboxFilter | None = None, *, limit: int = 50, offset: int = 0
) -> list[ApprovalRequest]:
    """The user's open requests, filtered; most urgent (soonest expiry) then newest first.
    Those the user has already answered at their current level wait for others, not
    for them, and are left out (as from the summary's counts).

    The same order as ``ApprovalEngine.list_pending_approvals``, with the
    type and channel filters done in SQL too. The page is chosen on ids
    alone, then only its rows are loaded whole. A tenant's user sees only
    that tenant's requests (their tenant is read from their account).
    """
    flt = flt or InboxFilter()
    if holds_nul(user, flt.workflow_id, flt.approval_type, flt.channel):
        return []
    with db.read() as session:
        ids = _urgent_ids(
            session,
            principals_of(session, user),
            flt,
            limit=limit,
            offset=offset,
            tenant=tenant_of(session, user),
        )
        if not ids:
            return []
        rows = {a.id: a for a in session.scalars(select(ApprovalRequest).where(ApprovalRequest.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def inbox_summary(db: Database, user: str, *, soon: timedelta = EXPIRING_SOON_WITHIN) -> InboxSummary:
    """How many requests wait for the user, how many expire soon, and the
    workflows of the most urgent ones."""
    with db.read() as session:
        principals = principals_of(session, user)
        tenant = tenant_of(session, user)
        # Assignee rows exist only while a request is open (they are deleted
        # when it is decided, expired or cancelled): an index count, less the
        # requests the user has already answered at their level (for a tenant's
        # user, joined to the requests to keep their tenant's).
        counted = select(func.count(func.distinct(ApprovalAssignee.approval_id))).where(
            ApprovalAssignee.principal.in_(principals),
            not_answered_by(principals[0], ApprovalAssignee.approval_id),
        )
        if tenant is not None:
            counted = counted.join(ApprovalRequest, ApprovalRequest.id == ApprovalAssignee.approval_id).where(
                ApprovalRequest.tenant == tenant
            )
        total = session.scalar(counted) or 0
        expiring = session.scalar(counted.where(ApprovalAssignee.expires_at <= utcnow() + soon)) or 0
        per_type = tenant_scope(tenant).apply(
            select(ApprovalRequest.approval_type, func.count(func.distinct(ApprovalRequest.id)))
            .join(ApprovalAssignee, ApprovalAssignee.approval_id == ApprovalRequest.id)
            .where(
                ApprovalAssignee.principal.in_(principals),
                not_answered_by(principals[0], ApprovalRequest.id),
            ),
            ApprovalRequest.tenant,
        )
        by_type = {
            kind: int(n) for kind, n in session.execute(per_type.group_by(ApprovalRequest.approval_type))
        }
        urgent = _urgent_ids(
            session, principals, InboxFilter(), limit=WORKFLOW_FACETS * 4, offset=0, tenant=tenant
        )
        counts: dict[str, int] = {}
        for workflow_id in session.scalars(
            select(ApprovalRequest.workflow_id).where(ApprovalRequest.id.in_(urgent))
        ):
            if workflow_id:
                counts[workflow_id] = counts.get(workflow_id, 0) + 1
    top = sorted(counts, key=lambda w: -counts[w])[:WORKFLOW_FACETS]
    names = workflow_names(db, top)
    by_workflow = {w: (names.get(w, w), counts[w]) for w in top}
    return InboxSummary(
        int(total),
        int(expiring),
        by_workflow,
        by_type={t: by_type[t] for t in APPROVAL_TYPES if by_type.get(t)},
    )


def channels_of(db: Database, approval_ids: list[str]) -> dict[str, list[str]]:
    """The channels each approval was sent through (from the outbox)."""
    if not approval_ids:
        return {}
    found: dict[str, list[str]] = {}
    with db.read() as session:
        for approval_id, channel in session.execute(
            select(Notification.approval_id, Notification.channel)
            .where(Notification.approval_id.in_(approval_ids))
            .group_by(Notification.approval_id, Notification.channel)
        ):
            if approval_id is not None:
                found.setdefault(approval_id, []).append(channel)
    return found


def workflow_names(db: Database, workflow_ids: list[str]) -> dict[str, str]:
    ids = [i for i in dict.fromkeys(workflow_ids) if i]
    if not ids:
        return {}
    with db.read() as session:
        rows = session.execute(select(Workflow.id, Workflow.name).where(Workflow.id.in_(ids)))
        return {workflow_id: name for workflow_id, name in rows}


def is_asked(db: Database, approval: ApprovalRequest | ApprovalDetail, user: str) -> bool:
    """Whether ``user`` (or one of their groups) is among the request's current approvers."""
    with db.read() as session:
        return bool(set(principals_of(session, user)) & set(approval.approvers))


def time_left(expires_at: datetime | None, now: datetime | None = None) -> str:
    """ "3h 12m left", "45s left", "expired", or "no deadline"."""
    if expires_at is None:
        return "no deadline"
    seconds = (expires_at - (now or utcnow())).total_seconds()
    if seconds <= 0:
        return "expired"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h left"
    if hours:
        return f"{hours}h {minutes}m left"
    if minutes:
        return f"{minutes}m left"
    # Under a minute, seconds: "1m left" for a 5-second deadline overstates it twelvefold.
    return f"{max(int(seconds), 1)}s left"
