"""Read-only aggregates for the Monitor page: approvals per day, time to decision,
totals by outcome, workflows by status, runner heartbeats; and the SQL of a
duration and a calendar day on either database (``seconds_between``,
``day_of``), which the metrics collector uses too.

Every function is one or a few GROUP BY queries over indexed columns, so it
stays fast with 100,000 workflows: nothing here loads rows to count them in
Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, case, func, select

from core.store.tables import (
    ApprovalRequest,
    RunnerHeartbeat,
    Workflow,
    utcnow,
)
from core.store.tenancy import tenant_scope

if TYPE_CHECKING:
    from core.store.db import Database

__all__ = [
    "DECISION_BUCKETS",
    "RunnerState",
    "approval_totals",
    "approvals_per_day",
    "day_of",
    "runner_heartbeats",
    "seconds_between",
    "time_to_decision",
    "workflows_by_status",
]


# Time-to-decision buckets (upper bound in seconds, label), shortest first.
DECISION_BUCKETS: tuple[tuple[float, str], ...] = (
    (60.0, "< 1 min"),
    (300.0, "1-5 min"),
    (3600.0, "5-60 min"),
    (4 * 3600.0, "1-4 h"),
    (86400.0, "4-24 h"),
    (3 * 86400.0, "1-3 days"),
)


LONGEST_BUCKET = "> 3 days"


def seconds_between(db: Database, start: Any, end: Any) -> ColumnElement[float]:
    if db.is_postgres:
        return cast("ColumnElement[float]", func.extract("epoch", end - start))
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def day_of(db: Database, column: Any) -> ColumnElement[Any]:
    """The calendar day (UTC) of a timestamp, as SQL."""
    if db.is_postgres:
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def approvals_per_day(
    db: Database, *, days: int = 30, tenant: str | None = None
) -> list[tuple[str, str, int]]:
    """(day, outcome, count) of requests opened in the last ``days`` days.

    Monitor aggregates take the viewer's ``tenant`` (core.store.tenancy): a
    tenant's user counts only that tenant's rows.
    """
    since = utcnow() - timedelta(days=days)
    day = day_of(db, ApprovalRequest.created_at)
    with db.read() as session:
        return [
            (d, s, n)
            for d, s, n in session.execute(
                tenant_scope(tenant)
                .apply(select(day, ApprovalRequest.status, func.count()), ApprovalRequest.tenant)
                .where(ApprovalRequest.created_at >= since)
                .group_by(day, ApprovalRequest.status)
                .order_by(day)
            )
        ]


def time_to_decision(db: Database, *, tenant: str | None = None) -> list[tuple[str, int]]:
    """How long decided requests took, as (bucket label, count), shortest first."""
    seconds = seconds_between(db, ApprovalRequest.created_at, ApprovalRequest.decided_at)
    bucket = case(*[(seconds < upper, label) for upper, label in DECISION_BUCKETS], else_=LONGEST_BUCKET)
    with db.read() as session:
        counts = {
            label: n
            for label, n in session.execute(
                tenant_scope(tenant)
                .apply(select(bucket, func.count()), ApprovalRequest.tenant)
                .where(
                    ApprovalRequest.decided_at.is_not(None),
                    ApprovalRequest.status.in_(("approved", "rejected", "modified")),
                )
                .group_by(bucket)
            )
        }
    labels = [label for _, label in DECISION_BUCKETS] + [LONGEST_BUCKET]
    return [(label, int(counts.get(label, 0))) for label in labels]


def approval_totals(db: Database, *, tenant: str | None = None) -> dict[str, int]:
    """Requests by status, plus how many were escalated."""
    scope = tenant_scope(tenant)
    with db.read() as session:
        totals = {
            s: int(n)
            for s, n in session.execute(
                scope.apply(select(ApprovalRequest.status, func.count()), ApprovalRequest.tenant).group_by(
                    ApprovalRequest.status
                )
            )
        }
        totals["escalated"] = int(
            session.scalar(
                scope.apply(select(func.count()).select_from(ApprovalRequest), ApprovalRequest.tenant).where(
                    ApprovalRequest.escalations > 0
                )
            )
            or 0
        )
    return totals


def workflows_by_status(db: Database, *, tenant: str | None = None) -> dict[str, int]:
    with db.read() as session:
        return {
            s: int(n)
            for s, n in session.execute(
                tenant_scope(tenant)
                .apply(select(Workflow.status, func.count()), Workflow.tenant)
                .group_by(Workflow.status)
            )
        }


@dataclass
class RunnerState:
    runner_id: str
    hostname: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    steps_executed: int
    seconds_since_seen: float
    alive: bool


def runner_heartbeats(
    db: Database, *, lease_seconds: float | None = None, limit: int = 50
) -> list[RunnerState]:
    """Runners seen recently; alive when seen within one lease."""
    from core.base.config import get_settings

    lease = lease_seconds or get_settings().lease_seconds
    now = utcnow()
    with db.read() as session:
        rows = session.scalars(
            select(RunnerHeartbeat).order_by(RunnerHeartbeat.last_seen_at.desc()).limit(limit)
        ).all()
    states = []
    for row in rows:
        age = (now - row.last_seen_at).total_seconds()
        states.append(
            RunnerState(
                row.runner_id,
                row.hostname,
                row.pid,
                row.started_at,
                row.last_seen_at,
                row.steps_executed,
                age,
                age <= lease,
            )
        )
    return states
