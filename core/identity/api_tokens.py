"""API tokens for the REST gateway.

A token is shown once when made; only its SHA-256 hash is stored, so a
leaked database does not leak usable tokens. The token's user is the actor of
everything done with it and the approver identity of its answers.

A token acts as an existing account (a token for an email without one is
refused; removing an account deletes its tokens, and one made for an account of
its address removed since is refused, core.identity.issued), carries **scopes**
(the core.identity.permissions actions it may do: by default everything its user's
role allows, never more) and may **expire**. Making and revoking tokens is
``users:manage`` and written to the audit trail (``token.created``,
``token.revoked``); anyone may revoke their own.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.base.errors import Invalid, NotAuthorized, NotFound
from core.identity.permissions import Action, Credential, check, parse_scopes, refuse, token_actions
from core.store.events import add_event
from core.store.tables import ApiToken, User, utcnow
from core.store.tenancy import tenant_scope

if TYPE_CHECKING:
    from core.store.db import Database

TOKEN_PREFIX = "cs_"
# last_used_at is written at most this often per token, so a busy client does
# not turn every read into a write.
LAST_USED_RESOLUTION_SECONDS = 60.0
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_LIFETIME = timedelta(days=3650)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_lifetime(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``3600s``: how long a token lives."""
    match = _DURATION.match(text or "")
    if not match or int(match.group(1)) <= 0:
        raise Invalid(f"{text!r} is not a lifetime; write e.g. 30d, 12h, 90m or 2w.")
    lifetime = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2).lower()])
    if lifetime > MAX_LIFETIME:
        raise Invalid(f"{text!r} is longer than ten years; give a shorter lifetime.")
    return lifetime


def create_token(
    db: Database,
    user_email: str,
    name: str,
    *,
    scopes: Iterable[str] | None = None,
    expires_in: timedelta | None = None,
    actor: str = "system",
) -> tuple[ApiToken, str]:
    """Make a token for the account ``user_email``; returns the row and the token (shown once).

    ``scopes`` (action names) default to everything the user's role allows;
    asking for more is refused. ``expires_in``: the token stops working then.
    """
    email = user_email.strip().lower()
    if "@" not in email:
        raise Invalid(f"{user_email!r} is not an email address.")
    name = name.strip()
    if not name:
        raise Invalid("Give the token a name (what or who uses it).")
    wanted = parse_scopes(scopes) if scopes is not None else None
    if wanted is not None and not wanted:
        raise Invalid("Give the token at least one scope (e.g. workflows:start).")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with db.session() as session:
        # Locked, as remove_user locks it: a removal either waits for this token (and
        # deletes it) or has already taken the account (NotFound below).
        user = session.get(User, email, with_for_update=True)
        if user is None:
            raise NotFound(
                f"No user {email!r}: a token acts as an account, so add the account "
                f"first (python -m core users add {email} --role service)."
            )
        check(session, actor, Action.USERS_MANAGE, tenant=user.tenant)
        most = token_actions(user.role)
        granted = wanted if wanted is not None else most
        beyond = sorted(granted - most)
        if beyond:
            refuse(
                session,
                actor,
                beyond[0],
                f"{email} has role {user.role}, which does not allow {', '.join(beyond)}; "
                "a token never has more than its user's role",
                message=f"A token for {email} cannot have {', '.join(beyond)}: their role "
                f"{user.role} does not allow it.",
            )
        row = ApiToken(
            name=name,
            token_hash=hash_token(token),
            user_email=email,
            scopes=sorted(granted),
            expires_at=now + expires_in if expires_in else None,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        add_event(
            session,
            "token.created",
            actor,
            data={
                "token_id": row.id,
                "name": name,
                "user": email,
                "scopes": row.scopes,
                "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            },
        )
    return row, token


def authenticate_token(db: Database, token: str) -> ApiToken:
    """The live token row for ``token``, or NotAuthorized (unknown, revoked,
    expired, its account removed, or disabled: an ``auth.token_refused`` event; made
    for an account of its address removed since, core.identity.issued: one too)."""
    from core.identity.issued import token_refusal

    if not token or len(token) > 200:
        raise NotAuthorized("That API token is not valid.")
    digest = hash_token(token)
    with db.read() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
        account = session.get(User, row.user_email) if row is not None else None
        earlier = token_refusal(session, row, account) if row is not None and account is not None else None
    if row is None:
        raise NotAuthorized("That API token is not valid.")
    if row.revoked_at is not None:
        raise NotAuthorized(f"The API token {row.name!r} was revoked.")
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        raise NotAuthorized(f"The API token {row.name!r} expired at {row.expires_at:%Y-%m-%d %H:%M} UTC.")
    if account is None:
        raise NotAuthorized(
            f"The API token {row.name!r} acts as {row.user_email}, who has no account any more."
        )
    if earlier is not None:
        from core.identity.account_state import record_refusal

        record_refusal(
            db,
            "auth.token_refused",
            row.user_email,
            row.user_email,
            token=row.name,
            reason="made for an account removed since",
        )
        raise NotAuthorized(earlier)
    if account.disabled_at is not None:
        from core.identity.account_state import record_refusal

        record_refusal(db, "auth.token_refused", row.user_email, row.user_email, token=row.name)
        raise NotAuthorized(
            f"The API token {row.name!r} acts as {row.user_email}, whose account is disabled."
        )
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
        with db.session() as session:
            live = session.get(ApiToken, row.id)
            if live is not None:
                live.last_used_at = now
        row.last_used_at = now
    return row


def credential_of(row: ApiToken) -> Credential:
    """What the token may do, for core.identity.permissions.acting_with."""
    scopes = parse_scopes(row.scopes) if row.scopes is not None else None
    return Credential(user=row.user_email, name=row.name, scopes=scopes)


def list_tokens(db: Database, user_email: str | None = None, *, tenant: str | None = None) -> list[ApiToken]:
    """Tokens (never the tokens themselves), oldest first; with ``tenant`` (a
    tenant user's), only the tokens of that tenant's accounts."""
    with db.read() as session:
        query = select(ApiToken).order_by(ApiToken.id)
        if user_email:
            query = query.where(ApiToken.user_email == user_email.strip().lower())
        scope = tenant_scope(tenant)
        if not scope.is_platform:
            query = query.join(User, User.email == ApiToken.user_email)
            query = scope.apply(query, User.tenant)
        return list(session.scalars(query).all())


def revoke_token(db: Database, token_id: int, actor: str = "system") -> ApiToken:
    """Revoke a token by id (``users:manage``, or its own user); revoking twice is harmless."""
    with db.session() as session:
        row = session.get(ApiToken, token_id, with_for_update=True)
        if row is None:
            raise NotFound(f"No API token has the id {token_id}.")
        if actor.strip().lower() != row.user_email:
            owner = session.get(User, row.user_email)
            check(session, actor, Action.USERS_MANAGE, tenant=owner.tenant if owner else None)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            row.updated_at = row.revoked_at
            add_event(
                session,
                "token.revoked",
                actor,
                data={"token_id": row.id, "name": row.name, "user": row.user_email},
            )
        return row


def token_dict(row: ApiToken, now: datetime | None = None) -> dict[str, Any]:
    """A token's listing (for the CLI's JSON and the Settings page)."""
    now = now or utcnow()
    if row.revoked_at is not None:
        state = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        state = "expired"
    else:
        state = "live"
    return {
        "id": row.id,
        "name": row.name,
        "user": row.user_email,
        "scopes": row.scopes if row.scopes is not None else ["(the user's role)"],
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "state": state,
        "revoked": row.revoked_at is not None,
    }
