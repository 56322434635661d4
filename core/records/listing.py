"""Listings as the CLI, REST and the pages page through them: open approval
requests and workflows, filtered, ordered and limited in the database.

Read only, and light on purpose: it needs the tables, the tenancy scope and
group membership, nothing of the engines. Each listing is one query built on
the Core tables (``core.store.schema``) and answered two ways: as mapped objects
(``pending_approvals``, ``list_workflows``: ``ApprovalEngine.list_pending_approvals``
and ``core.engine.workflows.list_workflows`` are these) or as Core rows without
the ORM (``pending_approval_rows``, ``workflow_rows``), so a listing command
starts without ``sqlalchemy.orm`` and the mapped classes (``bench/cli.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select

from core.base.errors import InvalidListFilter
from core.base.states import APPROVAL_OPEN, WORKFLOW_STATUSES
from core.base.storable import holds_nul
from core.identity.groups import normalise_principal, principals_in
from core.store.schema import (
    approval_assignees,
    approval_requests,
    approval_responses,
    output_visible_now,
    step_runs,
    workflows,
)
from core.store.tenancy import tenant_in, tenant_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row
    from sqlalchemy.orm import Session

    from core.store.db import Database
    from core.store.tables import ApprovalRequest, Workflow

__all__ = [
    "ListedWorkflow",
    "WorkflowPage",
    "list_workflows",
    "pending_approval_rows",
    "pending_approvals",
    "workflow_rows",
]

RowT = TypeVar("RowT")


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
    from core.store.tables import ApprovalRequest

    with db.read() as session:
        query = _open_requests(
            session,
            select(ApprovalRequest),
            requested_from,
            workflow_id,
            limit=limit,
            offset=offset,
            tenant=tenant,
        )
        return list(session.scalars(query).all())


def pending_approval_rows(
    db: Database, requested_from: str | None = None, workflow_id: str | None = None, **page: Any
) -> list[Row[Any]]:
    """``pending_approvals`` as Core rows (every column by its name), without the ORM;
    ``page``: its ``limit``, ``offset`` and ``tenant``."""
    with db.read_connection() as connection:
        query = _open_requests(connection, select(approval_requests), requested_from, workflow_id, **page)
        return list(connection.execute(query).all())


def _open_requests(
    reader: Connection | Session,
    query: Select[Any],
    requested_from: str | None,
    workflow_id: str | None,
    *,
    limit: int = 100,
    offset: int = 0,
    tenant: str | None = None,
) -> Select[Any]:
    """``query`` (of the requests' table or class) limited to the open requests
    ``pending_approvals`` lists, in its order, one page of them."""
    requests = approval_requests.c
    query = tenant_scope(tenant).apply(query.where(requests.status == APPROVAL_OPEN), requests.tenant)
    if requested_from:
        query = tenant_scope(tenant_in(reader, requested_from)).apply(query, requests.tenant)
        principals = principals_in(reader, requested_from)
        responses = approval_responses.c
        query = query.where(
            requests.id.in_(
                select(approval_assignees.c.approval_id).where(approval_assignees.c.principal.in_(principals))
            ),
            # Not those they already answered at the level now asked (as the inbox).
            ~select(responses.id)
            .where(
                responses.approval_id == requests.id,
                responses.approver == normalise_principal(requested_from),
                responses.level == requests.level,
            )
            .exists(),
        )
    if workflow_id:
        query = query.where(requests.workflow_id == workflow_id)
    return (
        query.order_by(requests.expires_at.is_(None), requests.expires_at, requests.created_at.desc())
        .limit(limit)
        .offset(offset)
    )


@dataclass
class WorkflowPage(Generic[RowT]):
    rows: list[RowT]
    total: int


class ListedWorkflow:
    """A workflow as ``workflow_rows`` reads it: its row's columns by name, and its
    ``step_outputs`` as ``Workflow.step_outputs`` gives them."""

    __slots__ = ("_row", "step_outputs")

    def __init__(self, row: Row[Any], step_outputs: dict[str, Any]) -> None:
        self._row = row
        self.step_outputs = step_outputs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def list_workflows(
    db: Database,
    *,
    status: str | list[str] | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
    tenant: str | None = None,
) -> WorkflowPage[Workflow]:
    """A page of workflows, newest first, filtered on the server.

    ``tenant`` is the viewer's (``core.store.tenancy``): None, a platform user,
    sees every workflow; a tenant's user sees only that tenant's.
    """
    from core.store.tables import Workflow

    queries = _workflow_page(
        Workflow, status=status, search=search, limit=limit, offset=offset, tenant=tenant
    )
    if queries is None:
        return WorkflowPage([], 0)
    count, page = queries
    with db.read() as session:
        total = session.scalar(count) or 0
        rows = session.scalars(page).all()
    return WorkflowPage(list(rows), total)


def workflow_rows(db: Database, **filters: Any) -> WorkflowPage[ListedWorkflow]:
    """``list_workflows`` (the same keywords) as Core rows with their step outputs,
    without the ORM."""
    queries = _workflow_page(workflows, **filters)
    if queries is None:
        return WorkflowPage([], 0)
    count, page = queries
    with db.read_connection() as connection:
        total = connection.scalar(count) or 0
        rows = connection.execute(page).all()
        outputs = _step_outputs(connection, [row.id for row in rows])
    return WorkflowPage([ListedWorkflow(row, outputs.get(row.id, {})) for row in rows], total)


def _workflow_page(
    subject: Any,
    *,
    status: str | list[str] | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
    tenant: str | None = None,
) -> tuple[Select[Any], Select[Any]] | None:
    """The count and the page of ``subject`` (the workflows' table or class) that
    ``list_workflows`` reads; None for a search no row can match, and
    ``InvalidListFilter`` for an unknown status."""
    statuses = [status] if isinstance(status, str) else list(status or [])
    for value in statuses:
        if value not in WORKFLOW_STATUSES:
            raise InvalidListFilter(f"Unknown status {value!r}; one of {', '.join(WORKFLOW_STATUSES)}.")
    columns = workflows.c
    conditions: list[ColumnElement[bool]] = []
    if statuses:
        conditions.append(columns.status.in_(statuses))
    if holds_nul(search):
        return None
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(columns.name.ilike(pattern, escape="\\"), columns.id.ilike(pattern, escape="\\"))
        )
    visible = tenant_scope(tenant).condition(columns.tenant)
    if visible is not None:
        conditions.append(visible)
    count = select(func.count()).select_from(workflows).where(*conditions)
    page = (
        select(subject)
        .where(*conditions)
        .order_by(columns.created_at.desc(), columns.id)
        .limit(limit)
        .offset(offset)
    )
    return count, page


def _step_outputs(connection: Connection, workflow_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each workflow's step outputs by name, as ``Workflow.output_runs`` loads them
    (one query for the page; a later run of a name replaces an earlier one's)."""
    if not workflow_ids:
        return {}
    runs = step_runs.c
    query = (
        select(runs.workflow_id, runs.step_name, runs.output)
        .where(runs.workflow_id.in_(workflow_ids), output_visible_now())
        .order_by(runs.id)
    )
    outputs: dict[str, dict[str, Any]] = {}
    for workflow_id, step_name, output in connection.execute(query):
        outputs.setdefault(workflow_id, {})[step_name] = output
    return outputs
