"""Who is calling: API tokens for the REST API, a session cookie for pages.

The REST API takes ``Authorization: Bearer <token>``; the token's user is the
actor and the approver identity. Browser pages (the Gradio approver UI) use a
signed, expiring session cookie set by the gateway's ``/login`` form after a
local-account sign-in (core.users.authenticate).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from core.api_tokens import authenticate_token
from core.db import Database
from core.errors import NotAuthorized
from core.models import User
from gateway.errors import Unauthenticated

SESSION_COOKIE = "countersign_session"
SESSION_MAX_AGE = 12 * 3600

bearer = HTTPBearer(auto_error=False, description="An API token: python -m core tokens create")


@dataclass(frozen=True)
class Caller:
    email: str
    token_name: str | None = None


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def api_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The API token's user, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("Send an API token: Authorization: Bearer <token>.")
    try:
        row = authenticate_token(database(request), credentials.credentials)
    except NotAuthorized as exc:
        raise Unauthenticated(str(exc)) from None
    return Caller(row.user_email, row.name)


def writer(request: Request, caller: Annotated[Caller, Depends(api_caller)]) -> Caller:
    """A caller allowed to change things: anyone but a viewer account."""
    with database(request).read() as session:
        user = session.get(User, caller.email)
    if user is not None and user.role == "viewer":
        raise NotAuthorized(f"{caller.email} is a viewer and cannot change anything.")
    return caller


CallerDep = Annotated[Caller, Depends(api_caller)]
WriterDep = Annotated[Caller, Depends(writer)]


# -- browser sessions ---------------------------------------------------------------


def _session_secret() -> str:
    configured = os.environ.get("COUNTERSIGN_SESSION_SECRET") or os.environ.get("COUNTERSIGN_SECRET_KEY")
    # Without a configured secret, sessions last as long as this process.
    return configured or _PROCESS_SECRET


_PROCESS_SECRET = secrets.token_urlsafe(32)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_session_secret(), salt="countersign.session",
                                  signer_kwargs={"digest_method": hashlib.sha256})


def make_session_cookie(email: str) -> str:
    return _serializer().dumps({"email": email})


def session_user(request: Request) -> str | None:
    """The signed-in user's email from the session cookie, or None."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    try:
        data = _serializer().loads(value, max_age=SESSION_MAX_AGE)
    except (BadSignature, SignatureExpired):
        return None
    email = data.get("email") if isinstance(data, dict) else None
    return email if isinstance(email, str) else None


def safe_next(target: str | None, default: str = "/approve/") -> str:
    """Only local paths: a login form must not redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
