"""The inbox's views: what waits for me, for my groups, and (admins) everything pending.

One query per page: the view picks the open requests (by assignee rows, so
only the current level's approvers, less those the user has already answered at
the request's level: they wait for others, not for the user), the search narrows them by title,
workflow name or requester, the sort orders them (deadline, age or amount),
and the page is cut in SQL. Counts for the view tabs are index counts over
the assignee rows. The pages call these; they hold no SQL themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from sqlalchemy import Float, Select, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from core.approvals.inbox import InboxItem, not_answered_by
from core.base.errors import Invalid
from core.base.states import APPROVAL_OPEN
from core.base.storable import holds_nul
from core.identity.groups import principals_of
from core.identity.permissions import Action, allowed, check
from core.store.tables import ApprovalAssignee, ApprovalRequest, ApprovalResponse, Notification, Workflow
from core.store.tenancy import tenant_of, tenant_scope

if TYPE_CHECKING:
    from core.store.db import Database

View = Literal["mine", "groups", "all"]
Sort = Literal["deadline", "age", "amount"]
VIEWS: tuple[View, ...] = get_args(View)
SORTS: tuple[Sort, ...] = get_args(Sort)
VIEW_LABELS: dict[View, str] = {
    "mine": "Waiting for me",
    "groups": "Waiting for my groups",
    "all": "All pending",
}
SORT_LABELS: dict[Sort, str] = {
    "deadline": "Deadline (soonest first)",
    "age": "Age (oldest first)",
    "amount": "Amount (largest first)",
}
PAGE_SIZES = (10, 25, 50, 100)
MAX_SEARCH = 200


@dataclass(frozen=True)
class InboxQuery:
    view: View = "mine"
    search: str = ""
    sort: Sort = "deadline"
    page_size: int = 25
    page: int = 1  # from 1
    workflow_id: str | None = None
    approval_type: str | None = None
    channel: str | None = None


@dataclass
class InboxPage:
    rows: list[InboxItem]
    total: int  # in the view, after the search
    workflow_names: dict[str, str] = field(default_factory=dict)
    # The rows the user may answer now, the ones a bulk decision may take: among the
    # approvers, not yet answered at the request's level, and not the user's own
    # request unless it allows self-approval (its requester may only reject it).
    answerable: frozenset[str] = frozenset()
    # The rows the user has answered at their level, waiting for others ("all pending" only:
    # the other views leave them out).
    answered: frozenset[str] = frozenset()


def _checked(query: InboxQuery) -> InboxQuery:
    problems = []
    if query.view not in VIEWS:
        problems.append(f"view: must be one of {', '.join(VIEWS)}, not {query.view!r}")
    if query.sort not in SORTS:
        problems.append(f"sort: must be one of {', '.join(SORTS)}, not {query.sort!r}")
    if query.page_size not in PAGE_SIZES:
        problems.append(f"page size: must be one of {', '.join(map(str, PAGE_SIZES))}")
    if query.page < 1:
        problems.append("page: must be 1 or more")
    if len(query.search) > MAX_SEARCH or holds_nul(
        query.search, query.workflow_id, query.approval_type, query.channel
    ):
        problems.append(f"search: at most {MAX_SEARCH} characters, without NUL")
    if problems:
        raise Invalid("The inbox query is invalid: " + "; ".join(problems) + ".")
    return query


def view_principals(session: Session, user: str, view: View) -> list[str] | None:
    """Whose assignee rows make the view: the user's email and groups (everything they may
    answer), only their groups (the shared queues), or None (every pending request).
    The first is always the user's normalised email (``principals_of``)."""
    principals = principals_of(session, user)
    if view == "mine":
        return principals
    if view == "groups":
        return principals[1:]
    return None


def _base(session: Session, user: str, view: View, *columns: Any) -> Select[Any]:
    if view == "all":
        # Everything pending is an overseer's view: refused (and audited) for others.
        check(session, user, Action.APPROVALS_OVERSEE)
    query = tenant_scope(tenant_of(session, user)).apply(select(*columns), ApprovalRequest.tenant)
    query = query.where(ApprovalRequest.status == APPROVAL_OPEN)
    principals = view_principals(session, user, view)
    if principals is not None:
        query = query.where(
            ApprovalRequest.id.in_(
                select(ApprovalAssignee.approval_id).where(ApprovalAssignee.principal.in_(principals))
            ),
            # Answered at its level: waiting for others, not for the user.
            not_answered_by(principals_of(session, user)[0], ApprovalRequest.id),
        )
    return query


def _filtered(query: Select[Any], flt: InboxQuery) -> Select[Any]:
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
    return _searched(query, flt.search)


def _searched(query: Select[Any], search: str) -> Select[Any]:
    term = search.strip().lower()
    if not term:
        return query
    return query.outerjoin(Workflow, Workflow.id == ApprovalRequest.workflow_id).where(
        or_(
            func.lower(ApprovalRequest.title).contains(term, autoescape=True),
            func.lower(ApprovalRequest.requested_by).contains(term, autoescape=True),
            func.lower(func.coalesce(Workflow.name, "")).contains(term, autoescape=True),
        )
    )


def _amount() -> Any:
    return cast(ApprovalRequest.context_data["amount"].as_float(), Float)


def _ordered(query: Select[Any], sort: Sort) -> Select[Any]:
    if sort == "age":
        return query.order_by(ApprovalRequest.created_at, ApprovalRequest.id)
    if sort == "amount":
        amount = _amount()
        return query.order_by(amount.is_(None), amount.desc(), ApprovalRequest.created_at, ApprovalRequest.id)
    return query.order_by(
        ApprovalRequest.expires_at.is_(None),
        ApprovalRequest.expires_at,
        ApprovalRequest.created_at.desc(),
        ApprovalRequest.id,
    )


def inbox_page(db: Database, user: str, query: InboxQuery | None = None) -> InboxPage:
    """One page of a view, searched and sorted, with its total and its workflows' names."""
    query = _checked(query or InboxQuery())
    with db.read() as session:
        base = _filtered(_base(session, user, query.view, ApprovalRequest.id), query)
        total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
        listed = _filtered(_base(session, user, query.view, ApprovalRequest), query)
        rows = list(
            session.scalars(
                _ordered(listed, query.sort).limit(query.page_size).offset((query.page - 1) * query.page_size)
            )
        )
        ids = {r.workflow_id for r in rows if r.workflow_id}
        names = (
            {w: n for w, n in session.execute(select(Workflow.id, Workflow.name).where(Workflow.id.in_(ids)))}
            if ids
            else {}
        )
        answerable, answered = _answerable(session, user, query.view, rows)
    return InboxPage([InboxItem.of(r) for r in rows], int(total), names, answerable, answered)


def _answerable(
    session: Session, user: str, view: View, rows: list[ApprovalRequest]
) -> tuple[frozenset[str], frozenset[str]]:
    """(the rows the user may answer now, the rows they have answered at their level).

    "mine" and "groups" hold only requests assigned to the user's principals and not
    answered by them; "all pending" asks which are, with one query for the page. The
    same checks as a vote (``core.approvals.voting.check_vote``), so a row offered for a
    bulk decision is not refused for who answers it.
    """
    principals = principals_of(session, user)
    email = principals[0]
    ids = [r.id for r in rows]
    if view == "all" and ids:
        asked = set(
            session.scalars(
                select(ApprovalAssignee.approval_id).where(
                    ApprovalAssignee.approval_id.in_(ids), ApprovalAssignee.principal.in_(principals)
                )
            )
        )
        votes = {
            (approval_id, level)
            for approval_id, level in session.execute(
                select(ApprovalResponse.approval_id, ApprovalResponse.level).where(
                    ApprovalResponse.approval_id.in_(ids), ApprovalResponse.approver == email
                )
            )
        }
        answered = frozenset(r.id for r in rows if (r.id, r.level) in votes)
    else:
        asked, answered = set(ids), frozenset()
    return (
        frozenset(
            r.id
            for r in rows
            if r.id in asked
            and r.id not in answered
            and (r.requested_by != email or bool((r.config or {}).get("allow_self_approval")))
        ),
        answered,
    )


def views_for(db: Database, user: str) -> tuple[View, ...]:
    """The views the user may open: all pending only for those who may oversee."""
    if allowed(db, user, Action.APPROVALS_OVERSEE):
        return VIEWS
    return ("mine", "groups")


def view_counts(db: Database, user: str) -> dict[View, int]:
    """How many requests wait in each view the user may open."""
    counts: dict[View, int] = {}
    views = views_for(db, user)
    with db.read() as session:
        for view in views:
            base = _base(session, user, view, ApprovalRequest.id)
            counts[view] = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    return counts


def newest_waiting(db: Database, user: str, *, limit: int = 20) -> list[tuple[str, str]]:
    """(id, title) of the newest requests waiting for the user or their groups (less those
    they have answered at their level), newest first: what a live inbox compares with what
    it has shown to announce new ones."""
    with db.read() as session:
        principals = principals_of(session, user)
        query = (
            tenant_scope(tenant_of(session, user))
            .apply(select(ApprovalRequest.id, ApprovalRequest.title), ApprovalRequest.tenant)
            .where(
                ApprovalRequest.status == APPROVAL_OPEN,
                ApprovalRequest.id.in_(
                    select(ApprovalAssignee.approval_id).where(ApprovalAssignee.principal.in_(principals))
                ),
                not_answered_by(principals[0], ApprovalRequest.id),
            )
        )
        return [
            (i, t)
            for i, t in session.execute(
                query.order_by(ApprovalRequest.created_at.desc(), ApprovalRequest.id).limit(limit)
            )
        ]


def status_of(db: Database, approval_id: str) -> tuple[str, int, int]:
    """(status, level, votes) of a request: what an open Approval page polls to notice a
    decision, a new level or a vote made elsewhere."""
    from core.store.tables import ApprovalResponse

    with db.read() as session:
        row = session.execute(
            select(ApprovalRequest.status, ApprovalRequest.level).where(ApprovalRequest.id == approval_id)
        ).one_or_none()
        if row is None:
            return ("unknown", 0, 0)
        votes = session.scalar(select(func.count()).where(ApprovalResponse.approval_id == approval_id)) or 0
        return (str(row[0]), int(row[1]), int(votes))
