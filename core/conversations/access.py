"""Who may see and do what in supervised conversations.

Supervisors are admins. An admin with no tenant (platform staff) sees and
supervises every session; an admin of a tenant, that tenant's sessions.
Viewers and approvers see only the sessions they started, and only the
person who started a session writes user messages in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.identity.permissions import ROLE_ACTIONS, Action, principal
from core.store import tenancy
from core.store.tables import ChatSession

if TYPE_CHECKING:
    from core.store.db import Database


@dataclass(frozen=True)
class Person:
    """Who acts: email, role and tenant, as core.identity.permissions.principal reads
    them (an account, whatever its name, is its role and tenant; an unknown email,
    e.g. an OIDC user without a local account, is a platform viewer; only a system
    actor core names itself, ``cli:...``, never an address, is a platform admin)."""

    email: str
    role: str
    tenant: str | None

    @property
    def is_supervisor(self) -> bool:
        """Whether the role may supervise (sessions:supervise, core.identity.permissions)."""
        return Action.SESSIONS_SUPERVISE in ROLE_ACTIONS.get(self.role, frozenset())


def person(db: Database, email: str) -> Person:
    with db.read() as session:
        who = principal(session, email)
    if who.kind == "system":  # the CLI and in-process code: a platform admin
        return Person(who.actor, "admin", None)
    if who.kind == "unknown" or who.role is None:
        return Person(who.actor, "viewer", None)
    return Person(who.actor, who.role, who.tenant)


def can_see(who: Person, chat: ChatSession) -> bool:
    if chat.user_email == who.email:
        return True
    return can_supervise(who, chat)


def can_supervise(who: Person, chat: ChatSession) -> bool:
    return who.is_supervisor and tenancy.can_see(who.tenant, chat.tenant)


@dataclass(frozen=True)
class Abilities:
    """What one person may do in one session now (pages show only these)."""

    write: bool  # write user messages (the person who started it, while not closed)
    supervise: bool  # take over / release / see both histories
    take_over: bool
    inject: bool  # this person holds the session
    release: bool
    close: bool


def abilities(db: Database, chat: ChatSession, email: str) -> Abilities:
    who = person(db, email)
    is_open = chat.status != "closed"
    supervise = can_supervise(who, chat)
    return Abilities(
        write=is_open and chat.user_email == who.email,
        supervise=supervise,
        take_over=supervise and chat.status == "active",
        inject=supervise and chat.status == "supervised" and chat.supervisor == who.email,
        release=supervise and chat.status == "supervised",
        close=is_open and (supervise or chat.user_email == who.email),
    )
