"""Who is calling: API tokens for the REST API, a session cookie for pages.

The REST API takes ``Authorization: Bearer <token>``; the token's user is the
actor and the approver identity, limited to the token's scopes. What the
actor may do is checked by core (core.identity.permissions), not here. Browser pages
(the Gradio approver UI) use a signed, expiring session cookie set by the
gateway's ``/login`` form after a local-account sign-in (core.identity.users.authenticate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.base.errors import NotAuthorized
from core.identity import user_tenant
from core.identity.api_tokens import authenticate_token, credential_of
from core.identity.browser_sessions import SESSION_COOKIE
from core.identity.permissions import use_credential
from core.identity.users import User, session_token
from core.identity.users import session_user as account_of_session
from gateway.errors import Unauthenticated

if TYPE_CHECKING:
    from core.store.db import Database

bearer = HTTPBearer(auto_error=False, description="An API token: python -m core tokens create")


@dataclass(frozen=True)
class Caller:
    email: str
    token_name: str | None = None
    # The token's user's tenant; None for platform users (core.store.tenancy).
    tenant: str | None = None
    # The token's scopes (core.identity.permissions actions); None: the user's whole role.
    scopes: tuple[str, ...] | None = None


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def api_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The API token's user, or 401.

    For the rest of the request the token's scopes limit what its user may
    do (core.identity.permissions.use_credential): core checks every action itself, so
    endpoints pass the caller's email and core refuses what the role or the
    token does not allow. Async so that the credential is set in the
    request's own context, which the endpoint (run in a worker thread) copies.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("Send an API token: Authorization: Bearer <token>.")
    db = database(request)
    try:
        row = await run_in_threadpool(authenticate_token, db, credentials.credentials)
    except NotAuthorized as exc:
        raise Unauthenticated(str(exc)) from None
    credential = credential_of(row)
    use_credential(credential)
    tenant = await run_in_threadpool(user_tenant, db, row.user_email)
    scopes = tuple(sorted(credential.scopes)) if credential.scopes is not None else None
    return Caller(row.user_email, row.name, tenant, scopes)


CallerDep = Annotated[Caller, Depends(api_caller)]


# -- browser sessions ---------------------------------------------------------------


def make_session_cookie(user: User) -> str:
    return session_token(user)


def session_user(request: Request, db: Database | None = None) -> str | None:
    """The signed-in user's email from the session cookie, or None (also when the
    account was removed or its sessions were ended since: core.identity.users.session_user).
    ``db``: for a mounted app (Gradio) whose requests do not carry the gateway's state."""
    user = account_of_session(db or database(request), request.cookies.get(SESSION_COOKIE))
    return user.email if user is not None else None


def safe_next(target: str | None, default: str = "/approve/") -> str:
    """Only local paths: a login form must not redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
