"""Who sees which rows: the tenancy rule, in one place.

- A user whose ``tenant`` is NULL is a **platform** user: they see every row
  (what they may do with it still depends on their role).
- A user with a tenant sees only rows whose ``tenant`` equals theirs. Rows
  with a NULL tenant are platform rows and are invisible to tenant users.
- A row a user may not see answers exactly like an unknown id (the same
  ``NotFound`` message), so ids of other tenants' rows leak nothing.
- What a user may *do* with the rows they see is core.identity.permissions' rule
  (roles and named actions); platform-wide actions need a platform user.

Every query that lists or fetches workflows, approval requests or chat
sessions goes through ``tenant_scope(user_tenant)`` (or the two shortcuts
below), so the rule cannot drift between the dashboard, the CLI, the REST
API and the channels. This module imports nothing of Countersign's but the
tables, so any engine module can use it; it imports no ORM (the mapped classes
are imported where a session looks rows up), so a Core-only reader can too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, Select, exists, select

from core.store.schema import tenants, users

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    from core.store.db import Database
    from core.store.tables import Tenant

# The tenant of a platform user (and of platform rows).
PLATFORM: str | None = None

SelectT = TypeVar("SelectT", bound=Select)  # any Select, whatever its columns


@dataclass(frozen=True)
class TenantScope:
    """What one user may see: everything (platform) or one tenant's rows."""

    tenant: str | None

    @property
    def is_platform(self) -> bool:
        return self.tenant is None

    def condition(self, column: Any) -> ColumnElement[bool] | None:
        """SQL restricting ``column`` (a ``tenant`` column) to this scope; None = no limit."""
        if self.tenant is None:
            return None
        condition: ColumnElement[bool] = column == self.tenant
        return condition

    def apply(self, query: SelectT, column: Any) -> SelectT:
        """``query`` limited to the rows this scope sees."""
        condition = self.condition(column)
        return query if condition is None else query.where(condition)

    def sees(self, row_tenant: str | None) -> bool:
        """Whether a row with tenant ``row_tenant`` is visible in this scope."""
        return self.tenant is None or row_tenant == self.tenant


def tenant_scope(user_tenant: str | None) -> TenantScope:
    """The scope of a user whose tenant is ``user_tenant`` (None: a platform user)."""
    return TenantScope(user_tenant or None)


def visible_tenant_filter(column: Any, user_tenant: str | None) -> ColumnElement[bool] | None:
    """``tenant_scope(user_tenant).condition(column)``: add it to a query when not None."""
    return tenant_scope(user_tenant).condition(column)


def can_see(user_tenant: str | None, row_tenant: str | None) -> bool:
    """Whether a user of ``user_tenant`` may see a row of ``row_tenant``."""
    return tenant_scope(user_tenant).sees(row_tenant)


def tenant_of(session: Session, email: str | None) -> str | None:
    """The tenant of the account ``email``; None for platform users and for
    actors without an account (``system``, ``cli:...``, runners)."""
    from core.store.tables import User

    if not email:
        return None
    user = session.get(User, email.strip().lower())
    return user.tenant if user is not None and user.tenant else None


def tenant_in(reader: Connection | Session, email: str | None) -> str | None:
    """``tenant_of`` as a Core query, on a connection (or a session): for a reader
    without the ORM (``user_tenant``, the CLI's listings)."""
    if not email:
        return None
    return (
        reader.execute(select(users.c.tenant).where(users.c.email == email.strip().lower())).scalar() or None
    )


def tenant_row(session: Session, slug: str) -> Tenant:
    """The tenant ``slug``, or ``TenantNotFound``."""
    from core.base.errors import TenantNotFound
    from core.store.tables import Tenant

    tenant = session.get(Tenant, slug)
    if tenant is None:
        raise TenantNotFound(f"No tenant has the slug {slug!r}.")
    return tenant


def unknown_people_may_view(db: Database) -> bool:
    """Whether someone signed in by the identity provider but without an
    account may look around as a platform viewer: only while no tenant
    exists, since a platform viewer sees every tenant's rows."""
    with db.read_connection() as connection:
        return not connection.scalar(select(exists().where(tenants.c.slug.is_not(None))))


def user_tenant(db: Database, email: str | None) -> str | None:
    """``tenant_of`` in its own read (for interfaces), a Core query: no ORM needed."""
    with db.read_connection() as connection:
        return tenant_in(connection, email)


__all__ = [
    "PLATFORM",
    "TenantScope",
    "tenant_scope",
    "visible_tenant_filter",
    "can_see",
    "tenant_of",
    "tenant_in",
    "user_tenant",
    "tenant_row",
]
