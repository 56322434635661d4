"""The gateway's sign-in for browser pages (the Gradio approver UI)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.errors import NotAuthorized
from core.sessions import SESSION_COOKIE, SESSION_MAX_AGE
from core.users import authenticate
from gateway.auth import database, make_session_cookie, safe_next
from gateway.templating import page

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(next: str = "/approve/") -> Response:
    return page("login.html", next=safe_next(next), email="", error=None)


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "/approve/",
) -> Response:
    try:
        user = authenticate(database(request), email, password)
    except NotAuthorized as exc:
        return page("login.html", status_code=401, next=safe_next(next), email=email, error=str(exc))
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, make_session_cookie(user.email), max_age=SESSION_MAX_AGE,
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


@router.get("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
