"""API tokens for the REST gateway.

A token is shown once when made; only its SHA-256 hash is stored, so a
leaked database does not leak usable tokens. The token's user is the actor of
everything done with it and the approver identity of its answers.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.errors import CountersignError, NotAuthorized, NotFound
from core.models import ApiToken, utcnow

if TYPE_CHECKING:
    from core.db import Database

TOKEN_PREFIX = "cs_"
# last_used_at is written at most this often per token, so a busy client does
# not turn every read into a write.
LAST_USED_RESOLUTION_SECONDS = 60.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(db: Database, user_email: str, name: str) -> tuple[ApiToken, str]:
    """Make a token for ``user_email``; returns the row and the token (shown once)."""
    email = user_email.strip().lower()
    if "@" not in email:
        raise CountersignError(f"{user_email!r} is not an email address.")
    name = name.strip()
    if not name:
        raise CountersignError("Give the token a name (what or who uses it).")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(name=name, token_hash=hash_token(token), user_email=email,
                   created_at=now, updated_at=now)
    with db.session() as session:
        session.add(row)
        session.flush()
    return row, token


def authenticate_token(db: Database, token: str) -> ApiToken:
    """The live token row for ``token``, or NotAuthorized."""
    if not token or len(token) > 200:
        raise NotAuthorized("That API token is not valid.")
    digest = hash_token(token)
    with db.read() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None:
        raise NotAuthorized("That API token is not valid.")
    if row.revoked_at is not None:
        raise NotAuthorized(f"The API token {row.name!r} was revoked.")
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
        with db.session() as session:
            live = session.get(ApiToken, row.id)
            if live is not None:
                live.last_used_at = now
        row.last_used_at = now
    return row


def list_tokens(db: Database, user_email: str | None = None) -> list[ApiToken]:
    with db.read() as session:
        query = select(ApiToken).order_by(ApiToken.id)
        if user_email:
            query = query.where(ApiToken.user_email == user_email.strip().lower())
        return list(session.scalars(query).all())


def revoke_token(db: Database, token_id: int) -> ApiToken:
    """Revoke a token by id; revoking twice is harmless."""
    with db.session() as session:
        row = session.get(ApiToken, token_id, with_for_update=True)
        if row is None:
            raise NotFound(f"No API token has the id {token_id}.")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            row.updated_at = row.revoked_at
        return row
