"""Group membership, both ways: the one definition.

A person is asked through their email or any group they belong to; every user
with the admin role also belongs to ``admins``. ``principals_of`` answers "as
whom is this person asked?" (the approval engine, the inbox, Slack);
``members_of`` answers "who is behind this recipient?" (the channels).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.tables import User
from core.store.tenancy import can_see

# Every user with the admin role belongs to this group.
ADMINS_GROUP = "admins"


def normalise_principal(value: str) -> str:
    return value.strip().lower()


def groups_of(user: User) -> list[str]:
    groups = [normalise_principal(g) for g in (user.groups or [])]
    if user.role == "admin" and ADMINS_GROUP not in groups:
        groups.append(ADMINS_GROUP)
    return groups


def principals_of(session: Session, user: str) -> list[str]:
    """A user's email and the groups they belong to."""
    email = normalise_principal(user)
    row = session.get(User, email)
    return [email, *(groups_of(row) if row is not None else [])]


def members_of(session: Session, recipient: str, *, tenant: str | None = None) -> list[str]:
    """Email addresses behind a recipient: itself, or a group's members who can see a
    row of ``tenant`` (users of other tenants are left out, core.store.tenancy) and
    whose account is not disabled (core.identity.account_state)."""
    if "@" in recipient:
        return [recipient]
    group = normalise_principal(recipient)
    users = session.scalars(select(User)).all()
    return sorted(
        u.email
        for u in users
        if can_see(u.tenant, tenant) and group in groups_of(u) and u.disabled_at is None
    )


__all__ = ["ADMINS_GROUP", "groups_of", "members_of", "normalise_principal", "principals_of"]
