"""Disabled accounts: kept (with their history, groups and tokens), but acting nowhere.

An admin (``users:manage``; a tenant's admin for that tenant's accounts only)
disables an account instead of removing it when the person may come back or
their name must stay on past decisions. While ``users.disabled_at`` is set:

- its dashboard and gateway sessions are over: disabling bumps the session
  version (core.identity.users.session_user also refuses a disabled account's token);
- signing in is refused after the right password (``auth.sign_in_refused``,
  reason ``account disabled``), so the state is not told to a guesser;
- its API tokens are refused (``auth.token_refused``), kept for when it is
  enabled again;
- core.identity.permissions refuses it every action, answering an approval included,
  whichever way it arrives (an email link, a Slack click mapped to it, REST,
  the CLI's ``--as``), each a ``permission.refused`` event: a disabled
  account is never treated as a person without an account.

- nothing is sent to it: requests and reminders queue no notification for
  it, a group's email goes to its other members, and a notification queued
  before it was disabled dies undelivered with the reason
  (``disabled_among``, used by core.approvals and core.channels).

Enabling clears the mark; the sessions ended by disabling stay ended. Both
changes are audit events (``user.disabled``, ``user.enabled``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from core.base.errors import Conflict, Forbidden, NotFound
from core.store.tables import User, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database

DISABLED_REASON = "account disabled"
DISABLED_SIGN_IN = "This account is disabled; ask an admin to enable it."


def is_disabled(user: User | None) -> bool:
    return user is not None and user.disabled_at is not None


def disabled_among(session: Session, recipients: Iterable[str]) -> set[str]:
    """The recipients that are disabled accounts, or addresses whose account was removed
    (core.identity.permissions.removed_among); group names are never among them."""
    addresses = {r for r in recipients if "@" in r}
    if not addresses:
        return set()
    from sqlalchemy import select

    from core.identity.permissions import removed_among

    found = session.scalars(
        select(User.email).where(User.email.in_(addresses), User.disabled_at.is_not(None))
    ).all()
    return set(found) | removed_among(session, addresses)


def _change(db: Database, email: str, actor: str, *, disable: bool) -> User:
    from core.identity.permissions import Action, check
    from core.store.events import add_event

    email = email.strip().lower()
    with db.session() as session:
        user = session.get(User, email)
        if user is None:
            raise NotFound(f"No user {email!r}.")
        check(session, actor, Action.USERS_MANAGE, tenant=user.tenant)
        if disable and actor.strip().lower() == email:
            raise Forbidden(f"{email} cannot disable their own account; ask another admin.")
        if is_disabled(user) == disable:
            raise Conflict(f"{email} is already {'disabled' if disable else 'enabled'}.")
        if disable:
            user.disabled_at = utcnow()
            # Every dashboard and gateway session made before ends (core.identity.users.session_user).
            user.session_version = (user.session_version or 0) + 1
        else:
            user.disabled_at = None
        user.updated_at = utcnow()
        add_event(session, "user.disabled" if disable else "user.enabled", actor, data={"user": email})
        return user


def disable_user(db: Database, email: str, *, actor: str = "system") -> User:
    """Disable an account (``users:manage``): see the module's docstring."""
    return _change(db, email, actor, disable=True)


def enable_user(db: Database, email: str, *, actor: str = "system") -> User:
    """Enable a disabled account again (``users:manage``); its old sessions stay ended."""
    return _change(db, email, actor, disable=False)


def record_refusal(db: Database, event_type: str, actor: str, user: str, **data: str) -> None:
    """An audit event for something a disabled account tried (sign-in, an API token);
    ``reason=`` for another refusal (core.identity.issued: a token of a removed account)."""
    from core.store.events import add_event

    with db.session() as session:
        add_event(session, event_type, actor, data={"user": user, "reason": DISABLED_REASON, **data})


def disabled_in(session: Session, email: str) -> bool:
    return is_disabled(session.get(User, email.strip().lower()))


__all__ = [
    "disable_user",
    "disabled_among",
    "enable_user",
    "is_disabled",
    "disabled_in",
    "record_refusal",
    "DISABLED_REASON",
    "DISABLED_SIGN_IN",
]
