"""``/healthz`` (is the database reachable) and ``/metrics`` (Prometheus).

``/metrics`` carries approvers' email addresses (the approval analytics'
``approver`` and ``by`` labels): with ``COUNTERSIGN_METRICS_TOKEN`` set, a
scrape must send it as a bearer token (Prometheus ``authorization``
credentials); under ``COUNTERSIGN_ENV=production`` it is refused until the
token is set, so a gateway facing the internet never lists its people.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from core.base.retry import database_answers
from core.base.secrets import secret
from core.ops.production import production
from gateway.auth import database
from gateway.schemas import Health

router = APIRouter(tags=["operations"])
METRICS_TOKEN = "COUNTERSIGN_METRICS_TOKEN"


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is unreachable."}},
)
def healthz(request: Request) -> JSONResponse:
    """200 when the database answers ``SELECT 1``; 503 otherwise."""
    db = database(request)
    try:
        answers = database_answers(db)
    except SQLAlchemyError:
        answers = False
    if not answers:
        return JSONResponse({"status": "unavailable", "database": db.dialect}, status_code=503)
    return JSONResponse({"status": "ok", "database": db.dialect})


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format, computed from the database (core.ops.metrics)."""
    token = secret(METRICS_TOKEN)
    if token is None and production():
        return JSONResponse(
            {
                "error": "MetricsTokenMissing",
                "message": f"Set {METRICS_TOKEN} to serve /metrics in production.",
            },
            status_code=403,
        )
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return JSONResponse(
                {
                    "error": "Unauthenticated",
                    "message": f"/metrics needs the bearer token in {METRICS_TOKEN}.",
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
