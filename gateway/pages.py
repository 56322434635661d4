"""The gateway's sign-in for browser pages (the Gradio approver UI).

The form is protected against login CSRF (another site signing a victim's
browser in as the attacker): a POST must come from this origin
(gateway.browser) and carry the token the form was drawn with, bound to a
random nonce in a ``SameSite=Strict`` cookie set with the form. Signing out
is a POST too (``GET /logout`` only shows the form), from this origin with
the session's CSRF token, so no other page can sign a person out.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.base.errors import NotAuthorized
from core.identity.browser_sessions import SESSION_COOKIE, SESSION_MAX_AGE
from core.identity.users import end_sessions, sign_in
from gateway.auth import database, make_session_cookie, safe_next, session_user
from gateway.browser import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_NONCE_COOKIE,
    LOGIN_TOKEN_AGE,
    login_csrf_token,
    login_csrf_valid,
    new_login_nonce,
    request_refusal,
    session_csrf_token,
    session_csrf_valid,
    set_cookie,
)
from gateway.templating import page

router = APIRouter(include_in_schema=False)
LOGIN_PATH = "/login"


def _form(
    request: Request, *, next: str, email: str = "", error: str | None = None, status_code: int = 200
) -> Response:
    """The sign-in form with a fresh nonce cookie and the token bound to it."""
    nonce = new_login_nonce()
    response = page(
        "login.html",
        status_code=status_code,
        next=safe_next(next),
        email=email,
        error=error,
        csrf_field=CSRF_FIELD,
        csrf_token=login_csrf_token(nonce),
    )
    set_cookie(
        response,
        request,
        LOGIN_NONCE_COOKIE,
        nonce,
        max_age=LOGIN_TOKEN_AGE,
        samesite="strict",
        path=LOGIN_PATH,
    )
    return response


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_form(request: Request, next: str = "/approve/") -> Response:
    return _form(request, next=next)


@router.post(LOGIN_PATH)
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "/approve/",
    csrf_token: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    refusal = request_refusal(request)
    if refusal is None and not login_csrf_valid(request.cookies.get(LOGIN_NONCE_COOKIE), csrf_token):
        refusal = (
            "This sign-in was not sent from this site's sign-in form (or the form is "
            "more than an hour old); sign in again."
        )
    if refusal is not None:
        return _form(request, next=next, email="", error=refusal, status_code=403)
    try:
        user = sign_in(
            database(request), email, password, address=request.client.host if request.client else None
        )
    except NotAuthorized as exc:
        return _form(request, next=next, email=email, error=str(exc), status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    session = make_session_cookie(user)
    set_cookie(response, request, SESSION_COOKIE, session, max_age=SESSION_MAX_AGE)
    # The approver page's script sends this token with each of its requests (gateway.browser).
    set_cookie(
        response,
        request,
        CSRF_COOKIE,
        session_csrf_token(session),
        max_age=SESSION_MAX_AGE,
        httponly=False,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_NONCE_COOKIE, path=LOGIN_PATH)
    return response


LOGOUT_PATH = "/logout"


def _logout_page(
    request: Request, email: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE) or ""
    return page(
        "logout.html",
        status_code=status_code,
        email=email,
        error=error,
        csrf_field=CSRF_FIELD,
        csrf_token=session_csrf_token(cookie),
    )


@router.get(LOGOUT_PATH, response_class=HTMLResponse)
def logout_form(request: Request) -> Response:
    """Asks; signs nothing out (a link, an image or a prefetch must not sign anyone out)."""
    email = session_user(request)
    if email is None:
        return RedirectResponse(LOGIN_PATH, status_code=303)
    return _logout_page(request, email)


@router.post(LOGOUT_PATH)
async def logout(request: Request) -> Response:
    """Sign out here and end the account's other sessions too (server side), when
    asked from this gateway's own page: same origin, and the session's CSRF token
    (the sign-out form's field, or the approver page's ``X-CSRF-Token`` header)."""
    email = await run_in_threadpool(session_user, request)
    refusal = request_refusal(request)  # also without a session: its cookie is not deleted
    if refusal is None and email is not None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        token = field if isinstance(field, str) else request.headers.get(CSRF_HEADER)
        if not session_csrf_valid(request.cookies.get(SESSION_COOKIE), token):
            refusal = (
                "This sign-out was not sent from this site's sign-out page (or the page "
                "is more than 12 hours old); open it again."
            )
    if refusal is not None:
        if email is None:
            return page(
                "result.html",
                status_code=403,
                heading="Not signed out",
                message=refusal,
                error=True,
                link=None,
            )
        return _logout_page(request, email, error=refusal, status_code=403)
    if email is not None:
        await run_in_threadpool(end_sessions, database(request), email, actor=email)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response
