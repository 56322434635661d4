"""Local accounts: salted scrypt password hashes, roles and groups."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.errors import CountersignError, NotAuthorized, NotFound
from core.models import User, utcnow

if TYPE_CHECKING:
    from core.db import Database

# admin, approver, viewer and service: what each may do is core.permissions.ROLE_ACTIONS.
ROLES = ("viewer", "approver", "admin", "service")
# scrypt cost: ~50 ms per check on one core; fine for sign-in, slow for guessing.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encoded_salt = base64.b64encode(salt).decode()
    encoded_digest = base64.b64encode(digest).decode()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded_salt}${encoded_digest}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                               r=int(r), p=int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def add_user(
    db: Database, email: str, *, role: str = "approver", password: str | None = None,
    name: str = "", groups: list[str] | None = None, tenant: str | None = None,
    actor: str = "system",
) -> User:
    """Create or update a local account (``users:manage``; a tenant's admin
    manages only that tenant's accounts). Creating an account or changing its
    role or tenant is written to the audit trail."""
    from core import store
    from core.permissions import Action, check

    if role not in ROLES:
        raise CountersignError(f"Unknown role {role!r}; one of {', '.join(ROLES)}.")
    email = email.strip().lower()
    if "@" not in email:
        raise CountersignError(f"{email!r} is not an email address.")
    with db.session() as session:
        existing = session.get(User, email)
        before = {"role": existing.role, "tenant": existing.tenant} if existing else None
        target_tenant = tenant if tenant is not None else (existing.tenant if existing else None)
        check(session, actor, Action.USERS_MANAGE, tenant=target_tenant)
        if before is not None and before["tenant"] != target_tenant:
            check(session, actor, Action.USERS_MANAGE, tenant=before["tenant"])
        user = existing or User(email=email, created_at=utcnow())
        user.role = role
        user.name = name or user.name or email.split("@")[0]
        if groups is not None:
            user.groups = [g.strip().lower() for g in groups if g.strip()]
        if password is not None:
            user.password_hash = hash_password(password)
        if tenant is not None:
            user.tenant = tenant
        user.updated_at = utcnow()
        session.add(user)
        after = {"role": user.role, "tenant": user.tenant}
        if before is None:
            store.append_event(session, "user.created", actor, after=after, data={"user": email})
        elif before != after:
            store.append_event(session, "user.role_changed", actor, before=before, after=after,
                               data={"user": email})
    return user


def authenticate(db: Database, email: str, password: str) -> User:
    with db.read() as session:
        user = session.get(User, email.strip().lower())
    if user is None or not check_password(password, user.password_hash):
        raise NotAuthorized("Wrong email or password.")
    return user


def get_user(db: Database, email: str) -> User:
    with db.read() as session:
        user = session.get(User, email.strip().lower())
    if user is None:
        raise NotFound(f"No user {email!r}.")
    return user


def list_users(db: Database) -> list[User]:
    with db.read() as session:
        return list(session.scalars(select(User).order_by(User.email)).all())
