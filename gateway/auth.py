"""Who is calling: API tokens for the REST API, a session cookie for pages.

The REST API takes ``Authorization: Bearer <token>``; the token's user is the
actor and the approver identity. Browser pages (the Gradio approver UI) use a
signed, expiring session cookie set by the gateway's ``/login`` form after a
local-account sign-in (core.users.authenticate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.api_tokens import authenticate_token
from core.db import Database
from core.errors import NotAuthorized
from core.models import User
from core.sessions import SESSION_COOKIE, make_session_token, read_session_token
from core.tenancy import user_tenant
from gateway.errors import Unauthenticated

bearer = HTTPBearer(auto_error=False, description="An API token: python -m core tokens create")


@dataclass(frozen=True)
class Caller:
    email: str
    token_name: str | None = None
    # The token's user's tenant; None for platform users (core.tenancy).
    tenant: str | None = None


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
    return Caller(row.user_email, row.name, user_tenant(database(request), row.user_email))


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


def make_session_cookie(email: str) -> str:
    return make_session_token(email)


def session_user(request: Request) -> str | None:
    """The signed-in user's email from the session cookie, or None."""
    return read_session_token(request.cookies.get(SESSION_COOKIE))


def safe_next(target: str | None, default: str = "/approve/") -> str:
    """Only local paths: a login form must not redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
