"""Requests from browsers: same-origin checks, CSRF tokens and cookies.

Every request that changes something on behalf of a browser (the ``/login``
form, an email confirmation page's answer, every Gradio event at
``/approve``) must come from one of the gateway's own pages:

* **Same origin.** ``Sec-Fetch-Site`` (sent by current browsers) must be
  ``same-origin`` or ``none`` (typed or bookmarked); ``same-site`` (a sibling
  subdomain, or another port of localhost) and ``cross-site`` are refused.
  Without it, an ``Origin`` header, else a ``Referer``, must name this
  gateway: the request's own scheme and ``Host``, or ``COUNTERSIGN_GATEWAY_URL``.
  A request with none of these headers is not a browser's cross-site
  request (browsers send ``Origin`` on every cross-origin POST) and goes on
  to the token check.
* **A CSRF token** (itsdangerous, signed with the session key and timed),
  bound to what the request acts with: the session cookie for Gradio (sent
  by the page in the ``X-CSRF-Token`` header, read from the
  ``countersign_csrf`` cookie), a random sign-in nonce cookie for ``/login``,
  and the link token for an email confirmation page (a hidden field). A page
  on another origin can neither read nor forge it.

Gradio's own CORS (which lets any localhost port read its API with the
user's cookies) is switched off: ``access-control-*`` headers are removed
from its answers, and its API refuses requests another site's page makes
(``Sec-Fetch-Site`` ``same-site``/``cross-site`` other than a navigation).

Cookies are ``Secure`` when the request came over HTTPS: its scheme, which
uvicorn takes from a proxy's ``X-Forwarded-Proto`` only when the proxy's
address is trusted (``FORWARDED_ALLOW_IPS``, default 127.0.0.1), or when
``COUNTERSIGN_GATEWAY_URL`` is an ``https://`` URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.base.config import get_settings
from core.identity.browser_sessions import SESSION_COOKIE, SESSION_MAX_AGE, read_session_token, signing_secret

CSRF_COOKIE = "countersign_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
LOGIN_NONCE_COOKIE = "countersign_login"
LOGIN_TOKEN_AGE = 3600
LINK_TOKEN_AGE = SESSION_MAX_AGE
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ACCEPTED_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


# -- same origin ----------------------------------------------------------------------


def normalise_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL (the default port left out), or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    shown = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{shown}"


def own_origins(scheme: str, host: str | None) -> set[str]:
    """The origins this gateway answers as: the request's own, and the configured one."""
    origins = {
        o
        for o in (
            normalise_origin(f"{scheme}://{host}") if host else None,
            normalise_origin(get_settings().gateway_url),
        )
        if o
    }
    return origins


def cross_site_refusal(headers: Mapping[str, str], scheme: str, *, navigation_ok: bool = False) -> str | None:
    """Why a request must be refused as coming from another site's page, or None.

    ``navigation_ok``: a top-level navigation (following a link) is fine (GET pages).
    """
    site = (headers.get("sec-fetch-site") or "").strip().lower()
    if site:
        if site in ACCEPTED_SITES:
            return None
        if navigation_ok and (headers.get("sec-fetch-mode") or "").lower() == "navigate":
            return None
        return (
            f"Refused: this request was made by a page on another site (Sec-Fetch-Site: "
            f"{site}); only the gateway's own pages may send it."
        )
    own = own_origins(scheme, headers.get("host"))
    origin = headers.get("origin")
    if origin is not None:
        if normalise_origin(origin) in own:
            return None
        return (
            f"Refused: this request came from another origin ({origin[:200]}); only the "
            "gateway's own pages may send it."
        )
    referer = headers.get("referer")
    if referer is not None and not navigation_ok:
        if normalise_origin(referer) in own:
            return None
        return "Refused: this request came from a page on another origin (Referer)."
    return None


def request_refusal(request: Request) -> str | None:
    return cross_site_refusal(request.headers, request.url.scheme)


# -- CSRF tokens ----------------------------------------------------------------------


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        signing_secret(), salt=f"countersign.csrf.{purpose}", signer_kwargs={"digest_method": hashlib.sha256}
    )


def _digest(binding: str) -> str:
    return hashlib.sha256(binding.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def make_csrf_token(purpose: str, binding: str) -> str:
    """A token proving a form or page for ``binding`` (a session, a nonce, a link) was ours."""
    token = _serializer(purpose).dumps(_digest(binding))
    return token if isinstance(token, str) else token.decode()


def csrf_valid(purpose: str, binding: str | None, token: str | None, max_age: int) -> bool:
    if not binding or not token or len(token) > 500:
        return False
    try:
        bound = _serializer(purpose).loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired too
        return False
    return isinstance(bound, str) and hmac.compare_digest(bound, _digest(binding))


# The email confirmation page's token is bound to the link token the form carries.
def link_csrf_token(link_token: str) -> str:
    return make_csrf_token("email", link_token)


def link_csrf_valid(link_token: str, token: str | None) -> bool:
    return csrf_valid("email", link_token, token, LINK_TOKEN_AGE)


# The Gradio page's token is bound to the session cookie.
def session_csrf_token(session_cookie: str) -> str:
    return make_csrf_token("session", session_cookie)


def session_csrf_valid(session_cookie: str | None, token: str | None) -> bool:
    return csrf_valid("session", session_cookie, token, SESSION_MAX_AGE)


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def login_csrf_token(nonce: str) -> str:
    return make_csrf_token("login", nonce)


def login_csrf_valid(nonce: str | None, token: str | None) -> bool:
    return csrf_valid("login", nonce, token, LOGIN_TOKEN_AGE)


# -- cookies --------------------------------------------------------------------------


def is_https(scheme: str) -> bool:
    """Whether cookies must be ``Secure``: the request came over HTTPS (uvicorn applies a
    trusted proxy's ``X-Forwarded-Proto``), or the gateway is configured as https."""
    return scheme == "https" or get_settings().gateway_url.strip().lower().startswith("https://")


def set_cookie(
    response: Response,
    request: Request,
    name: str,
    value: str,
    *,
    max_age: int,
    httponly: bool = True,
    samesite: str = "lax",
    path: str = "/",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=httponly,
        samesite=samesite,  # type: ignore[arg-type]
        secure=is_https(request.url.scheme),
        path=path,
    )


def csrf_cookie_header(session_cookie: str, scheme: str) -> bytes:
    """``Set-Cookie`` for the Gradio page's CSRF token (readable by the page's script)."""
    secure = "; Secure" if is_https(scheme) else ""
    return (
        f"{CSRF_COOKIE}={session_csrf_token(session_cookie)}; Max-Age={SESSION_MAX_AGE}; "
        f"Path=/; SameSite=Strict{secure}"
    ).encode("latin-1")


# -- the Gradio mount -----------------------------------------------------------------

# Runs in the page before Gradio's own script: every same-origin request that is not
# GET/HEAD/OPTIONS carries the CSRF token from the countersign_csrf cookie.
GRADIO_HEAD = """<script>
(function () {
  var original = window.fetch;
  function token() {
    var found = document.cookie.match(/(?:^|;\\s*)countersign_csrf=([^;]+)/);
    return found ? decodeURIComponent(found[1]) : "";
  }
  window.fetch = function (input, init) {
    init = init || {};
    var method = String(init.method || (input && input.method) || "GET").toUpperCase();
    var url = new URL(typeof input === "string" ? input : (input && input.url) || String(input),
                      window.location.href);
    if (url.origin === window.location.origin && ["GET", "HEAD", "OPTIONS"].indexOf(method) < 0) {
      var headers = new Headers(init.headers || (input instanceof Request ? input.headers : {}));
      headers.set("X-CSRF-Token", token());
      init = Object.assign({}, init, {headers: headers});
    }
    return original.call(this, input, init);
  };
})();
</script>"""


def _plain_refusal(status: int, message: str) -> Response:
    body = json.dumps(
        {"error": "CrossSiteRequest" if status == 403 else "Refused", "message": message, "problems": []}
    )
    return Response(body, status_code=status, media_type="application/json")


class ApproverUiGuard:
    """ASGI middleware for the Gradio mount (``prefix``): same-origin and CSRF checks on
    every request that changes something, no cross-origin reads of its API, and the
    CSRF cookie handed to a signed-in page."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    def _ours(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._ours(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method = scope.get("method", "GET").upper()
        scheme = scope.get("scheme", "http")
        unsafe = method not in SAFE_METHODS
        refusal = cross_site_refusal(headers, scheme, navigation_ok=not unsafe)
        if refusal is not None:
            await _plain_refusal(403, refusal)(scope, receive, send)
            return
        session_cookie = _cookie(headers, SESSION_COOKIE)
        signed_in = read_session_token(session_cookie) is not None
        if unsafe and signed_in and not session_csrf_valid(session_cookie, headers.get(CSRF_HEADER)):
            await _plain_refusal(
                403,
                f"Refused: the {CSRF_HEADER} header is missing or does "
                "not match your session; reload the page.",
            )(scope, receive, send)
            return
        hand_token = (
            method == "GET"
            and signed_in
            and session_cookie is not None
            and scope.get("path") in (self.prefix, self.prefix + "/")
            and not session_csrf_valid(session_cookie, _cookie(headers, CSRF_COOKIE))
        )

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-")
                ]
                if hand_token and session_cookie is not None:
                    kept.append((b"set-cookie", csrf_cookie_header(session_cookie, scheme)))
                message["headers"] = kept
            await send(message)

        await self.app(scope, receive, send_guarded)


def _cookie(headers: Headers, name: str) -> str | None:
    return cookie_parser(headers.get("cookie", "")).get(name)


__all__ = [
    "cross_site_refusal",
    "request_refusal",
    "ApproverUiGuard",
    "GRADIO_HEAD",
    "link_csrf_token",
    "link_csrf_valid",
    "login_csrf_token",
    "login_csrf_valid",
    "session_csrf_token",
    "session_csrf_valid",
    "set_cookie",
    "is_https",
]
