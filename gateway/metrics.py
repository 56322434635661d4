"""``/healthz`` (is the database reachable) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from core.base.retry import database_answers
from gateway.auth import database
from gateway.schemas import Health

router = APIRouter(tags=["operations"])


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
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
