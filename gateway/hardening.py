"""Hardening for every gateway request and response.

No gateway page may be framed (clickjacking an approver's click on
``/approve`` or an email confirmation page): ``X-Frame-Options: DENY`` and a
CSP with ``frame-ancestors 'none'``. Browsers are also told not to sniff
types and to send our URLs (which may hold link tokens) as referrers to this
origin only (``same-origin``: our own forms then carry a real ``Origin``,
which the same-origin check of gateway.browser reads).

Every request body is bounded (``BodyLimits``): ``COUNTERSIGN_MAX_BODY``
bytes (1 MB by default, else 413, whatever its Content-Type), and a JSON body
at most ``MAX_NESTING`` (64) levels deep (else 422), measured on its bytes
before anything parses it, holding no integer longer than Python reads from text
(4300 digits, else 422 naming its place); a body declared JSON must be UTF-8
(else 400).
"""

from __future__ import annotations

import json
import os
import sys

import structlog
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.base.storable import MAX_NESTING, json_integer_too_long, json_too_deep

log = structlog.get_logger(__name__)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in SECURITY_HEADERS if h[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- bounded request bodies -----------------------------------------------------------

MAX_BODY_ENV = "COUNTERSIGN_MAX_BODY"
DEFAULT_MAX_BODY = 1024 * 1024


def max_body() -> int:
    """The largest request body accepted, in bytes (``COUNTERSIGN_MAX_BODY``, default 1 MB)."""
    raw = os.environ.get(MAX_BODY_ENV, "").strip().replace("_", "")
    try:
        value = int(raw) if raw else DEFAULT_MAX_BODY
    except ValueError:
        log.warning("gateway.max_body_invalid", value=raw[:50], used=DEFAULT_MAX_BODY)
        return DEFAULT_MAX_BODY
    return value if value > 0 else DEFAULT_MAX_BODY


class _TooLarge(Exception):
    pass


def _refusal(status: int, error: str, message: str, problems: list[str]) -> Response:
    body = json.dumps({"error": error, "message": message, "problems": problems})
    return Response(body, status_code=status, media_type="application/json")


def too_large(limit: int) -> Response:
    return _refusal(
        413,
        "BodyTooLarge",
        f"The request body is larger than {limit} bytes, the limit ({MAX_BODY_ENV}).",
        [f"(body): larger than {limit} bytes ({MAX_BODY_ENV})"],
    )


def not_utf8(exc: UnicodeDecodeError) -> Response:
    # FastAPI would answer a bare 400 "There was an error parsing the body".
    return _refusal(
        400,
        "BodyNotUtf8",
        "The request body is not valid UTF-8, which JSON must be.",
        [f"(body): not valid UTF-8 at byte {exc.start}"],
    )


def too_deep(problem: str) -> Response:
    # 422, as core refuses nesting it finds deeper in (core.base.storable.too_deep).
    return _refusal(
        422,
        "BodyTooDeep",
        f"The JSON body nests deeper than {MAX_NESTING} levels, the limit (mappings "
        "and lists inside each other).",
        [problem],
    )


def integer_too_long(problem: str) -> Response:
    # FastAPI would answer a bare 400 "There was an error parsing the body" (json.loads
    # refuses the number with a ValueError naming no place); 422, as NaN or depth are.
    place = problem.partition(": ")[0]
    return _refusal(
        422,
        "BodyIntegerTooLong",
        f"The JSON body holds an integer longer than {sys.get_int_max_str_digits()} digits, "
        f"the limit, at {place}.",
        [problem],
    )


class BodyLimits:
    """ASGI middleware bounding every request body before anything reads it.

    A body larger than ``max_body()`` is refused with 413 (at once when its
    Content-Length says so, else as soon as the bytes received pass the
    limit, whatever the application made of the interrupted read: FastAPI
    turns it into a bare 400 while parsing a form); a JSON body
    (``Content-Type`` ``application/json`` or ``+json``, or none, which a
    route may read as JSON) is read whole and refused with 422 when it nests
    deeper than ``MAX_NESTING`` levels, measured on its bytes
    (core.base.storable.json_too_deep) before FastAPI, pydantic, jsonschema or
    ``json.loads`` parse it, with 422 naming the place of an integer longer than
    Python reads from text (core.base.storable.json_integer_too_long), and one
    declared JSON with 400 when it is not UTF-8 (RFC 8259; FastAPI would answer
    a bare 400 without the reason).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = max_body()
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _refusal(
                    400,
                    "BadRequest",
                    "Content-Length is not a number.",
                    ["(headers): Content-Length is not a number"],
                )(scope, receive, send)
                return
            if length > limit:
                await too_large(limit)(scope, receive, send)
                return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        # FastAPI parses a body without a Content-Type as JSON too.
        if content_type in ("", "application/json") or content_type.endswith("+json"):
            await self._json(scope, receive, send, limit, declared=bool(content_type))
            return
        await self._counted(scope, receive, send, limit)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int, declared: bool) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_large(limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if problem := json_too_deep(body):
            await too_deep(problem)(scope, receive, send)
            return
        if problem := json_integer_too_long(body):
            await integer_too_long(problem)(scope, receive, send)
            return
        if declared:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await not_utf8(exc)(scope, receive, send)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        size = 0
        over = False  # the bytes received passed the limit
        started = False  # the application's answer had begun before that

        async def counted() -> Message:
            nonlocal size, over
            if over:
                raise _TooLarge()
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    over = True
                    raise _TooLarge()
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if over and not started:
                # What the application made of _TooLarge (FastAPI, parsing a form: a
                # bare 400 "There was an error parsing the body"): the 413 goes instead.
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not over:  # else the cut read's consequence, _TooLarge or what wraps it
                raise
        if over and not started:
            await too_large(limit)(scope, receive, send)
