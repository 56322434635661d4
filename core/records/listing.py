"""Listings as the CLI, REST and the pages page through them: open approval
requests and workflows, filtered, ordered and limited in the database.

Read only, and light on purpose: it needs the tables, the tenancy scope and
group membership, nothing of the engines, so a listing command starts fast
(``bench/cli.py``). ``ApprovalEngine.list_pending_approvals`` and
``core.engine.workflows.list_workflows`` are these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, or_, select

from core.base.errors import InvalidListFilter
from core.base.states import APPROVAL_OPEN, WORKFLOW_STATUSES
from core.base.storable import holds_nul
from core.identity.groups import normalise_principal, principals_of
from core.store.tables import ApprovalAssignee, ApprovalRequest, ApprovalResponse, Workflow
from core.store.tenancy import tenant_of, tenant_scope

if TYPE_CHECKING:
    from core.store.db import Database

__all__ = ["WorkflowPage", "list_workflows", "pending_approvals"]


def pending_approvals(
    db: Database,
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
    tenants never brings the other's requests), and not those they already
    answered at the level now asked (they wait for others, not for them).
    """
    with db.read() as session:
        query = tenant_scope(tenant).apply(
            select(ApprovalRequest).where(ApprovalRequest.status == APPROVAL_OPEN), ApprovalRequest.tenant
        )
        if requested_from:
            query = tenant_scope(tenant_of(session, requested_from)).apply(query, ApprovalRequest.tenant)
            principals = principals_of(session, requested_from)
            query = query.where(
                ApprovalRequest.id.in_(
                    select(ApprovalAssignee.approval_id).where(ApprovalAssignee.principal.in_(principals))
                ),
                # Not those they already answered at the level now asked (as the inbox).
                ~select(ApprovalResponse.id)
                .where(
                    ApprovalResponse.approval_id == ApprovalRequest.id,
                    ApprovalResponse.approver == normalise_principal(requested_from),
                    ApprovalResponse.level == ApprovalRequest.level,
                )
                .exists(),
            )
        if workflow_id:
            query = query.where(ApprovalRequest.workflow_id == workflow_id)
        query = (
            query.order_by(
                ApprovalRequest.expires_at.is_(None),
                ApprovalRequest.expires_at,
                ApprovalRequest.created_at.desc(),
            )
            .limit(limit)
            .offset(offset)
        )
        return list(session.scalars(query).all())


@dataclass
class WorkflowPage:
    rows: list[Workflow]
    total: int


def list_workflows(
    db: Database,
    *,
    status: str | list[str] | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
    tenant: str | None = None,
) -> WorkflowPage:
    """A page of workflows, newest first, filtered on the server.

    ``tenant`` is the viewer's (``core.store.tenancy``): None, a platform user,
    sees every workflow; a tenant's user sees only that tenant's.
    """
    statuses = [status] if isinstance(status, str) else list(status or [])
    for value in statuses:
        if value not in WORKFLOW_STATUSES:
            raise InvalidListFilter(f"Unknown status {value!r}; one of {', '.join(WORKFLOW_STATUSES)}.")
    query = select(Workflow)
    count = select(func.count()).select_from(Workflow)
    conditions: list[ColumnElement[bool]] = []
    if statuses:
        conditions.append(Workflow.status.in_(statuses))
    if holds_nul(search):
        return WorkflowPage([], 0)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(Workflow.name.ilike(pattern, escape="\\"), Workflow.id.ilike(pattern, escape="\\"))
        )
    visible = tenant_scope(tenant).condition(Workflow.tenant)
    if visible is not None:
        conditions.append(visible)
    for condition in conditions:
        query = query.where(condition)
        count = count.where(condition)
    with db.read() as session:
        total = session.scalar(count) or 0
        rows = session.scalars(
            query.order_by(Workflow.created_at.desc(), Workflow.id).limit(limit).offset(offset)
        ).all()
    return WorkflowPage(list(rows), total)
