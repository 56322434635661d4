"""Browser sign-in sessions shared by the dashboard and the gateway.

A session is a cookie holding the signed-in email, the account's session version
and which account row of that address it is for, signed (itsdangerous, SHA-256)
and timed. Both faces use the same cookie name and key, so on one
host a sign-in to either is a sign-in to both. The key is
``COUNTERSIGN_SESSION_SECRET``; without it each process makes its own, and
sessions end with the process.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SESSION_COOKIE = "countersign_session"
SESSION_MAX_AGE = 12 * 3600
SECRET_ENVS = ("COUNTERSIGN_SESSION_SECRET", "COUNTERSIGN_SECRET_KEY")
_PROCESS_SECRET = secrets.token_urlsafe(32)


def signing_secret() -> str:
    """The key sessions (and the gateway's CSRF tokens, under their own salt) are signed with."""
    configured = next((os.environ[name] for name in SECRET_ENVS if os.environ.get(name)), None)
    return configured or _PROCESS_SECRET


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        signing_secret(), salt="countersign.session", signer_kwargs={"digest_method": hashlib.sha256}
    )


@dataclass(frozen=True)
class SessionClaims:
    """What a genuine, unexpired session token says: the address, the account's session
    version, and which account row of that address it was made for
    (core.identity.issued.account_mark; None in a token made before tokens said)."""

    email: str
    version: int
    account: int | None


def make_session_token(email: str, version: int = 0, account: int | None = None) -> str:
    """A session for ``email`` at the account's session version, for the account row
    ``account`` (core.identity.users.session_token gives both)."""
    payload: dict[str, object] = {"email": email, "v": int(version)}
    if account is not None:
        payload["a"] = int(account)
    return _serializer().dumps(payload)


def read_session_claims(value: str | None, *, max_age: int = SESSION_MAX_AGE) -> SessionClaims | None:
    """What a genuine, unexpired token claims, or None.

    Only the signature and age are checked here; whether the account still exists,
    is the one the token was made for and is at its version is
    core.identity.users.session_user's check.
    """
    if not value:
        return None
    try:
        data = _serializer().loads(value, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict):
        return None
    email, version, account = data.get("email"), data.get("v", 0), data.get("a")
    if not isinstance(email, str) or not isinstance(version, int) or isinstance(version, bool):
        return None
    if account is not None and (not isinstance(account, int) or isinstance(account, bool)):
        return None
    return SessionClaims(email, version, account)


def read_session_token(value: str | None, *, max_age: int = SESSION_MAX_AGE) -> str | None:
    """The email a session token was made for, or None if it is missing, forged or old.

    Signature only: to accept a session use core.identity.users.session_user, which
    also refuses the tokens of removed accounts and ended sessions.
    """
    claims = read_session_claims(value, max_age=max_age)
    return claims.email if claims else None
