"""What a browser sends with the gateway's forms: the CSRF tokens (gateway.browser).

``answer_form`` is an email confirmation page's form as the page draws it
(the link token and its CSRF token); ``sign_in`` fills in the ``/login`` form
the way a browser does (GET the form, POST it with its token and nonce
cookie) and, for the Gradio API, sends the page's ``X-CSRF-Token`` header
from then on; ``sign_out`` posts the ``/logout`` page's form.
"""

from __future__ import annotations

import re
from typing import Any

from httpx import Response

from gateway.browser import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, link_csrf_token


def answer_form(token: str, **fields: str) -> dict[str, str]:
    """The confirmation page's form for ``token``: the link, its CSRF token, ``fields``."""
    return {"token": token, CSRF_FIELD: link_csrf_token(token), **fields}


def form_csrf(html: str) -> str:
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: Any, email: str, password: str, next: str | None = None, **post: Any) -> Response:
    """Sign in through the gateway's /login form, as a browser would."""
    form = client.get("/login", params={"next": next} if next else None)
    assert form.status_code == 200, form.text
    data = {"email": email, "password": password, CSRF_FIELD: form_csrf(form.text)}
    if next is not None:
        data["next"] = next
    response: Response = client.post("/login", data=data, **post)
    token = client.cookies.get(CSRF_COOKIE)
    if token:
        client.headers[CSRF_HEADER] = token
    return response


def sign_out(client: Any, **post: Any) -> Response:
    """Sign out through the gateway's /logout page, as a browser would (GET the form, POST it)."""
    form = client.get("/logout")
    assert form.status_code == 200, form.text
    response: Response = client.post("/logout", data={CSRF_FIELD: form_csrf(form.text)}, **post)
    return response
