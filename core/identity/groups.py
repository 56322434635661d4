"""Group membership, both ways: the one definition.

A person is asked through their email or any group they belong to; every user
with the admin role also belongs to ``admins``. ``principals_of`` answers "as
whom is this person asked?" (the approval engine, the inbox, Slack);
``members_of`` answers "who is behind this recipient?" (the channels).

A person named to decide must be able to see the request: a user of another
tenant never can (core.store.tenancy), so ``outside_tenant`` names them and
``not_in_tenant`` says so per place they are named (the engine refuses such a
workflow or request). An address without an account and a platform user (no
tenant) belong to no tenant and may be named anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.store.schema import users
from core.store.tenancy import can_see

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row
    from sqlalchemy.orm import Session

    from core.store.tables import User

# Every user with the admin role belongs to this group.
ADMINS_GROUP = "admins"


def normalise_principal(value: str) -> str:
    return value.strip().lower()


def groups_of(user: User | Row[Any, Any]) -> list[str]:
    groups = [normalise_principal(g) for g in (user.groups or [])]
    if user.role == "admin" and ADMINS_GROUP not in groups:
        groups.append(ADMINS_GROUP)
    return groups


def principals_of(session: Session, user: str) -> list[str]:
    """A user's email and the groups they belong to."""
    from core.store.tables import User

    email = normalise_principal(user)
    row = session.get(User, email)
    return [email, *(groups_of(row) if row is not None else [])]


def principals_in(reader: Connection | Session, user: str) -> list[str]:
    """``principals_of`` as a Core query, on a connection (or a session): for a reader
    without the ORM (the CLI's listings)."""
    email = normalise_principal(user)
    row = reader.execute(select(users.c.groups, users.c.role).where(users.c.email == email)).first()
    return [email, *(groups_of(row) if row is not None else [])]


def members_of(session: Session, recipient: str, *, tenant: str | None = None) -> list[str]:
    """Email addresses behind a recipient: itself, or a group's members who can see a
    row of ``tenant`` (users of other tenants are left out, core.store.tenancy) and
    whose account is not disabled (core.identity.account_state)."""
    if "@" in recipient:
        # A person of another tenant is never told about the request (defence in depth:
        # the engine refuses to ask them, core.approvals.engine).
        return [] if outside_tenant(session, [recipient], tenant) else [recipient]
    from core.store.tables import User

    group = normalise_principal(recipient)
    accounts = session.scalars(select(User)).all()
    return sorted(
        u.email
        for u in accounts
        if can_see(u.tenant, tenant) and group in groups_of(u) and u.disabled_at is None
    )


def outside_tenant(session: Session, principals: Iterable[str], tenant: str | None) -> list[str]:
    """The people among ``principals`` (emails; group names are left alone) whose
    account cannot see a row of ``tenant``: users of another tenant, and for a
    platform row (``tenant`` None) users of any tenant. Addresses without an
    account and platform users are never among them."""
    emails = list(dict.fromkeys(normalise_principal(p) for p in principals if "@" in p))
    if not emails:
        return []
    rows = session.execute(select(users.c.email, users.c.tenant).where(users.c.email.in_(emails))).all()
    foreign = {email for email, user_tenant in rows if not can_see(user_tenant or None, tenant)}
    return [email for email in emails if email in foreign]


def not_in_tenant(session: Session, named: Iterable[tuple[str, str]], tenant: str | None) -> list[str]:
    """One problem per ``(where, person)`` whose person is ``outside_tenant``: that
    they are not in this workflow's tenant and so could never answer."""
    named = list(named)
    foreign = set(outside_tenant(session, [person for _, person in named], tenant))
    whose = (
        f"this workflow's tenant {tenant!r}"
        if tenant
        else "this workflow's tenant (none: a platform workflow)"
    )
    return [
        f"{where}: {normalise_principal(person)} is not in {whose}, so they could never "
        "see or answer its request; name someone in it"
        for where, person in named
        if normalise_principal(person) in foreign
    ]


__all__ = [
    "ADMINS_GROUP",
    "groups_of",
    "members_of",
    "normalise_principal",
    "not_in_tenant",
    "outside_tenant",
    "principals_in",
    "principals_of",
]
