"""Approval analytics: how people approve, for the Monitor, its CSV and /metrics.

Over the requests opened in a window (default the last 30 days), within the
viewer's tenant (core.store.tenancy):

* time to decision, p50 and p90 (linear interpolation between ranks):
  - by approval type: request opened -> decided, for requests people decided
    (approved, modified, rejected; expiry is counted apart);
  - by approver and by channel: each vote's answer time, from when that
    approver's round began (the request opened, its level was reached or it
    was escalated) to the vote;
* the share of requests that expired, and that were escalated;
* rubber-stamping: approving votes given under ``RUBBER_STAMP_SECONDS`` after
  the round began, per approver, with their share of that approver's approvals.

Queries live here, never in pages; the figures are computed from the rows in
Python (percentiles are not portable SQL across SQLite and PostgreSQL).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.approvals.standing_rules import RULE_ACTOR_PREFIX
from core.base.csv_cells import csv_text
from core.identity.permissions import Action, check
from core.store.tables import ApprovalRequest, ApprovalResponse, WorkflowEvent, utcnow
from core.store.tenancy import tenant_of, tenant_scope

if TYPE_CHECKING:
    from core.store.db import Database

WINDOW_DAYS = 30
RUBBER_STAMP_SECONDS = 5.0
DECIDED_BY_PEOPLE = ("approved", "modified", "rejected")
APPROVING = ("approve", "modify")
RELEASING = ("approved", "modified")  # a request decided so releases its call
ROUND_EVENTS = ("approval.level_passed", "approval.escalated")
CSV_COLUMNS = ["figure", "by", "key", "count", "p50_seconds", "p90_seconds", "share"]


@dataclass(frozen=True)
class DecisionTime:
    by: str  # type, approver or channel
    key: str
    count: int
    p50: float
    p90: float


@dataclass(frozen=True)
class RubberStamps:
    approver: str
    approvals: int
    fast: int  # approved under RUBBER_STAMP_SECONDS

    @property
    def share(self) -> float:
        return self.fast / self.approvals if self.approvals else 0.0


@dataclass(frozen=True)
class ApprovalAnalytics:
    since: datetime
    requests: int
    expired: int
    escalated: int
    decision_times: list[DecisionTime]
    rubber_stamps: list[RubberStamps]
    # Guarded calls released (approved or modified), and how many a standing rule released.
    released: int = 0
    released_by_rules: int = 0

    @property
    def rules_share(self) -> float:
        """Standing rules' share of the released calls."""
        return self.released_by_rules / self.released if self.released else 0.0

    @property
    def expired_share(self) -> float:
        return self.expired / self.requests if self.requests else 0.0

    @property
    def escalated_share(self) -> float:
        return self.escalated / self.requests if self.requests else 0.0

    def times_by(self, by: str) -> list[DecisionTime]:
        return [t for t in self.decision_times if t.by == by]


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _times(by: str, groups: dict[str, list[float]]) -> list[DecisionTime]:
    return [
        DecisionTime(by, key, len(v), quantile(v, 0.5), quantile(v, 0.9)) for key, v in sorted(groups.items())
    ]


def compute(session: Session, *, tenant: str | None, since: datetime) -> ApprovalAnalytics:
    """The figures over requests opened since ``since`` (``tenant``: a tenant user's scope)."""
    scope = tenant_scope(tenant)
    requests = session.execute(
        scope.apply(
            select(
                ApprovalRequest.id,
                ApprovalRequest.approval_type,
                ApprovalRequest.status,
                ApprovalRequest.created_at,
                ApprovalRequest.decided_at,
                ApprovalRequest.escalations,
                ApprovalRequest.decided_by,
                ApprovalRequest.proposed_call,
            ).where(ApprovalRequest.created_at >= since),
            ApprovalRequest.tenant,
        )
    ).all()
    in_window = select(ApprovalRequest.id).where(ApprovalRequest.created_at >= since)
    in_window = scope.apply(in_window, ApprovalRequest.tenant)
    votes = session.execute(
        select(
            ApprovalResponse.approval_id,
            ApprovalResponse.approver,
            ApprovalResponse.channel,
            ApprovalResponse.decision,
            ApprovalResponse.created_at,
        ).where(ApprovalResponse.approval_id.in_(in_window))
    ).all()
    rounds: dict[str, list[datetime]] = defaultdict(list)
    for request in requests:
        rounds[request.id].append(request.created_at)
    for approval_id, at in session.execute(
        select(WorkflowEvent.approval_id, WorkflowEvent.created_at).where(
            WorkflowEvent.event_type.in_(ROUND_EVENTS), WorkflowEvent.approval_id.in_(in_window)
        )
    ):
        rounds[str(approval_id)].append(at)
    for starts in rounds.values():
        starts.sort()

    by_type: dict[str, list[float]] = defaultdict(list)
    for r in requests:
        if r.status in DECIDED_BY_PEOPLE and r.decided_at is not None:
            by_type[r.approval_type].append((r.decided_at - r.created_at).total_seconds())
    by_approver: dict[str, list[float]] = defaultdict(list)
    by_channel: dict[str, list[float]] = defaultdict(list)
    approvals: dict[str, int] = defaultdict(int)
    fast: dict[str, int] = defaultdict(int)
    for vote in votes:
        starts = rounds[vote.approval_id]
        began = starts[max(bisect_right(starts, vote.created_at) - 1, 0)]
        seconds = max((vote.created_at - began).total_seconds(), 0.0)
        by_approver[vote.approver].append(seconds)
        by_channel[vote.channel].append(seconds)
        if vote.decision in APPROVING:
            approvals[vote.approver] += 1
            fast[vote.approver] += seconds < RUBBER_STAMP_SECONDS
    # JSON null and SQL NULL both read back as None: the request guarded no call.
    released = [r for r in requests if r.status in RELEASING and r.proposed_call is not None]
    return ApprovalAnalytics(
        since=since,
        released=len(released),
        released_by_rules=sum((r.decided_by or "").startswith(RULE_ACTOR_PREFIX) for r in released),
        requests=len(requests),
        expired=sum(r.status == "expired" for r in requests),
        escalated=sum((r.escalations or 0) > 0 for r in requests),
        decision_times=[
            *_times("type", by_type),
            *_times("approver", by_approver),
            *_times("channel", by_channel),
        ],
        rubber_stamps=[RubberStamps(a, approvals[a], fast[a]) for a in sorted(approvals)],
    )


def approval_analytics(
    db: Database, viewer: str, *, days: int = WINDOW_DAYS, now: datetime | None = None
) -> ApprovalAnalytics:
    """The figures ``viewer`` may read (audit:read), within their tenant."""
    with db.read() as session:
        check(session, viewer, Action.AUDIT_READ)
        return compute(
            session, tenant=tenant_of(session, viewer), since=(now or utcnow()) - timedelta(days=days)
        )


def _number(value: float) -> str:
    return f"{value:.3f}"


def analytics_csv(figures: ApprovalAnalytics) -> str:
    """The figures as one CSV table (``CSV_COLUMNS``), as the Monitor's download gives it
    (core.base.csv_cells: an approver or workflow name never runs as a formula)."""
    rows: list[list[Any]] = []
    for t in figures.decision_times:
        rows.append(["time_to_decision", t.by, t.key, t.count, _number(t.p50), _number(t.p90), ""])
    rows.append(["requests", "expired", "", figures.expired, "", "", _number(figures.expired_share)])
    rows.append(["requests", "escalated", "", figures.escalated, "", "", _number(figures.escalated_share)])
    for s in figures.rubber_stamps:
        rows.append(["rubber_stamps", "approver", s.approver, s.fast, "", "", _number(s.share)])
    rows.append(
        [
            "released_calls",
            "standing_rule",
            "",
            figures.released_by_rules,
            "",
            "",
            _number(figures.rules_share),
        ]
    )
    return csv_text(CSV_COLUMNS, rows)


def metric_families(figures: ApprovalAnalytics) -> list[Any]:
    """The same figures as Prometheus metric families (core.telemetry.metrics serves them)."""
    from prometheus_client.core import GaugeMetricFamily

    times = GaugeMetricFamily(
        "countersign_approval_time_to_decision_seconds",
        f"Time to decision over the last {WINDOW_DAYS} days: p50/p90 by approval type, approver and channel.",
        labels=["by", "key", "quantile"],
    )
    for t in figures.decision_times:
        times.add_metric([t.by, t.key, "0.5"], t.p50)
        times.add_metric([t.by, t.key, "0.9"], t.p90)
    shares = GaugeMetricFamily(
        "countersign_approval_requests_share",
        f"Share of the requests opened in the last {WINDOW_DAYS} days that expired or were escalated.",
        labels=["outcome"],
    )
    shares.add_metric(["expired"], figures.expired_share)
    shares.add_metric(["escalated"], figures.escalated_share)
    stamps = GaugeMetricFamily(
        "countersign_approval_rubber_stamps",
        f"Approvals given under {RUBBER_STAMP_SECONDS:g} s after being asked, per approver, "
        f"over the last {WINDOW_DAYS} days.",
        labels=["approver"],
    )
    stamp_share = GaugeMetricFamily(
        "countersign_approval_rubber_stamp_share",
        f"Share of an approver's approvals given under {RUBBER_STAMP_SECONDS:g} s.",
        labels=["approver"],
    )
    for s in figures.rubber_stamps:
        stamps.add_metric([s.approver], s.fast)
        stamp_share.add_metric([s.approver], s.share)
    rules = GaugeMetricFamily(
        "countersign_approval_released_by_rule_share",
        f"Standing rules' share of the guarded calls released in the last {WINDOW_DAYS} days.",
    )
    rules.add_metric([], figures.rules_share)
    return [times, shares, stamps, stamp_share, rules]


__all__ = [
    "WINDOW_DAYS",
    "RUBBER_STAMP_SECONDS",
    "CSV_COLUMNS",
    "DecisionTime",
    "RubberStamps",
    "ApprovalAnalytics",
    "quantile",
    "compute",
    "approval_analytics",
    "analytics_csv",
    "metric_families",
]
