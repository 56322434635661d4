"""Countersign errors as HTTP answers.

Every refusal has the same body, ``{"error", "message", "problems"}``, where
``error`` is the error's class name and ``message`` its plain one-line reason.
Bad input never becomes a 500: request validation, driver-level refusals
(e.g. a NUL character PostgreSQL cannot store) and our own errors all map to
4xx here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.base import errors
from core.base.errors import CountersignError, Unauthenticated


class ErrorBody(BaseModel):
    """The body of every refusal."""

    error: str = Field(description="The error's name, e.g. NotFound or InvalidResponse.")
    message: str = Field(description="A plain one-line reason.")
    problems: list[str] = Field(
        default_factory=list, description="Each problem found, by path, when there are several."
    )
    action: str | None = Field(
        default=None, description="For a refusal (403): the action refused, e.g. workflows:cancel."
    )


# Each kind of core error (core.base.errors.KINDS) has one status; a few leaves
# say more (a used or expired link is gone, not merely invalid).
STATUS_BY_KIND: dict[type[CountersignError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Invalid: 422,
    errors.Forbidden: 403,
    errors.Unauthenticated: 401,
    errors.Unavailable: 503,
}
_STATUS_BY_LEAF: list[tuple[type[CountersignError], int]] = [
    (errors.LinkUsed, 410),
    (errors.LinkExpired, 410),
    (errors.LinkError, 400),
]


def status_for(error: CountersignError) -> int:
    for cls, status in _STATUS_BY_LEAF:
        if isinstance(error, cls):
            return status
    kind = errors.kind_of(error)
    return STATUS_BY_KIND[kind] if kind is not None else 400


def error_body(error: CountersignError) -> dict[str, Any]:
    problems = list(getattr(error, "problems", []) or [])
    body = {"error": type(error).__name__, "message": str(error), "problems": problems}
    action = getattr(error, "action", None)
    if action:  # a refused core.identity.permissions action
        body["action"] = action
    return body


def error_response(error: CountersignError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthenticated) else None
    return JSONResponse(error_body(error), status_code=status_for(error), headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "(request)"


async def _countersign_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CountersignError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    body = {
        "error": "InvalidRequest",
        "message": "The request is invalid: " + "; ".join(problems),
        "problems": problems,
    }
    return JSONResponse(body, status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    names = {400: "InvalidRequest", 401: "Unauthenticated", 404: "NotFound", 405: "MethodNotAllowed"}
    body = {"error": names.get(exc.status_code, "HTTPError"), "message": str(exc.detail), "problems": []}
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    # The driver refused a value (a NUL character, a number out of range):
    # that is the client's input, not our failure.
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    body = {
        "error": "InvalidRequest",
        "message": f"The database cannot store a value sent: {reason}",
        "problems": [reason],
    }
    return JSONResponse(body, status_code=422)


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    body = {"error": "Conflict", "message": f"That conflicts with existing data: {reason}", "problems": []}
    return JSONResponse(body, status_code=409)


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    body = {"error": "DatabaseError", "message": f"The database is unavailable: {reason}", "problems": []}
    return JSONResponse(body, status_code=503)


def install(app: FastAPI) -> None:
    app.add_exception_handler(CountersignError, _countersign_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(OperationalError, _unavailable)


# Responses every authenticated operation may give, for the OpenAPI document.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request body could not be parsed."},
    401: {"model": ErrorBody, "description": "No or bad API token."},
    403: {"model": ErrorBody, "description": "Not allowed for this user."},
    404: {"model": ErrorBody, "description": "No such object."},
    409: {"model": ErrorBody, "description": "Refused in the object's current state."},
    422: {"model": ErrorBody, "description": "The request or answer is invalid; see problems."},
    503: {"model": ErrorBody, "description": "The database is unavailable."},
}
