"""Browser sign-in sessions shared by the dashboard and the gateway.

A session is a cookie holding the signed-in email, signed (itsdangerous,
SHA-256) and timed. Both faces use the same cookie name and key, so on one
host a sign-in to either is a sign-in to both. The key is
``COUNTERSIGN_SESSION_SECRET``; without it each process makes its own, and
sessions end with the process.
"""

from __future__ import annotations

import hashlib
import os
import secrets

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


def make_session_token(email: str, version: int = 0) -> str:
    """A session for ``email`` at the account's session version (core.identity.users.session_token)."""
    return _serializer().dumps({"email": email, "v": int(version)})


def read_session_claims(value: str | None, *, max_age: int = SESSION_MAX_AGE) -> tuple[str, int] | None:
    """(email, session version) of a genuine, unexpired token, or None.

    Only the signature and age are checked here; whether the account still
    exists and the version is current is core.identity.users.session_user's check.
    """
    if not value:
        return None
    try:
        data = _serializer().loads(value, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict):
        return None
    email, version = data.get("email"), data.get("v", 0)
    if not isinstance(email, str) or not isinstance(version, int):
        return None
    return email, version


def read_session_token(value: str | None, *, max_age: int = SESSION_MAX_AGE) -> str | None:
    """The email a session token was made for, or None if it is missing, forged or old.

    Signature only: to accept a session use core.identity.users.session_user, which
    also refuses the tokens of removed accounts and ended sessions.
    """
    claims = read_session_claims(value, max_age=max_age)
    return claims[0] if claims else None
