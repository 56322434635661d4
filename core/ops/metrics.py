"""Prometheus metrics computed from the database at scrape time.

Every process that decides (gateway, dashboard, CLI, runners) writes the
database, so counting there gives one truthful number however many processes
run; no process-local counter can. Each scrape is a handful of aggregate
queries over indexed columns. The gateway serves them at ``/metrics``;
runners may expose the same registry, with their own counters
(``core.telemetry.metrics.runner_metrics``) added.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import case, func, literal, or_, select

from core.approvals.monitor import seconds_between
from core.ops.alerts import RULES
from core.store.tables import Alert, ApprovalRequest, ApprovalResponse, Notification, Workflow, utcnow
from core.telemetry.metrics import runner_metrics

if TYPE_CHECKING:
    from core.store.db import Database

DECIDED_OUTCOMES = ("approved", "rejected", "modified", "expired")
# Seconds from request to decision: a minute to a week.
DECISION_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0)


class DatabaseCollector(Collector):
    """Approvals, deliveries and runner lag, read from one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Any]:
        with self.db.read() as session:
            requested = CounterMetricFamily(
                "countersign_approvals_requested", "Approval requests opened, by type.", labels=["type"]
            )
            for approval_type, count in session.execute(
                select(ApprovalRequest.approval_type, func.count()).group_by(ApprovalRequest.approval_type)
            ):
                requested.add_metric([approval_type], count)
            yield requested

            pending = GaugeMetricFamily(
                "countersign_approvals_pending", "Approval requests waiting for an answer."
            )
            pending.add_metric(
                [], session.scalar(select(func.count()).where(ApprovalRequest.status == "pending")) or 0
            )
            yield pending

            # The channel of a decision is the channel of the vote that settled
            # it (the newest); timeouts have no vote and count as "timeout".
            last_channel = (
                select(ApprovalResponse.channel)
                .where(ApprovalResponse.approval_id == ApprovalRequest.id)
                .order_by(ApprovalResponse.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            decided_rows = (
                select(
                    ApprovalRequest.status.label("outcome"),
                    func.coalesce(last_channel, literal("timeout")).label("channel"),
                )
                .where(ApprovalRequest.status.in_(DECIDED_OUTCOMES))
                .subquery()
            )
            decided = CounterMetricFamily(
                "countersign_approvals_decided",
                "Approval requests decided, by outcome and channel.",
                labels=["outcome", "channel"],
            )
            for outcome, channel, count in session.execute(
                select(decided_rows.c.outcome, decided_rows.c.channel, func.count()).group_by(
                    decided_rows.c.outcome, decided_rows.c.channel
                )
            ):
                decided.add_metric([outcome, channel], count)
            yield decided

            seconds = seconds_between(self.db, ApprovalRequest.created_at, ApprovalRequest.decided_at)
            columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in DECISION_BUCKETS]
            row = session.execute(
                select(func.count(), func.coalesce(func.sum(seconds), 0.0), *columns).where(
                    ApprovalRequest.status.in_(DECIDED_OUTCOMES), ApprovalRequest.decided_at.is_not(None)
                )
            ).one()
            total, total_seconds = int(row[0] or 0), float(row[1] or 0.0)
            buckets = [
                (floatToGoString(bound), int(n or 0))
                for bound, n in zip(DECISION_BUCKETS, row[2:], strict=True)
            ]
            buckets.append(("+Inf", total))
            histogram = HistogramMetricFamily(
                "countersign_approval_decision_seconds", "Time from an approval request to its decision."
            )
            histogram.add_metric([], buckets, sum_value=total_seconds)
            yield histogram

            deliveries = GaugeMetricFamily(
                "countersign_deliveries",
                "Notifications in the outbox, by channel and status.",
                labels=["channel", "status"],
            )
            for channel, status, count in session.execute(
                select(Notification.channel, Notification.status, func.count()).group_by(
                    Notification.channel, Notification.status
                )
            ):
                deliveries.add_metric([channel, status], count)
            yield deliveries

            now = utcnow()
            oldest = session.scalar(
                select(func.min(Workflow.runnable_at)).where(
                    Workflow.status == "running",
                    Workflow.runnable_at <= now,
                    or_(Workflow.lease_owner.is_(None), Workflow.lease_expires_at < now),
                )
            )
            lag = GaugeMetricFamily(
                "countersign_runner_lag_seconds",
                "How long the oldest runnable workflow has waited for a runner (0: none waits).",
            )
            lag.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
            yield lag

            workflows = GaugeMetricFamily("countersign_workflows", "Workflows by status.", labels=["status"])
            for status, count in session.execute(
                select(Workflow.status, func.count()).group_by(Workflow.status)
            ):
                workflows.add_metric([status], count)
            yield workflows

            # every rule reported, 0 included
            alerts = GaugeMetricFamily(
                "countersign_alerts_open", "Unresolved alerts, by rule.", labels=["rule"]
            )
            opened = {
                rule: int(count)
                for rule, count in session.execute(
                    select(Alert.rule, func.count()).where(Alert.resolved_at.is_(None)).group_by(Alert.rule)
                )
            }
            for rule in sorted({*RULES, *opened}):
                alerts.add_metric([rule], opened.get(rule, 0))
            yield alerts

            # How people approve (the Monitor's analytics, core.ops.analytics), platform-wide.
            from datetime import timedelta

            from core.ops.analytics import WINDOW_DAYS, compute, metric_families

            yield from metric_families(compute(session, tenant=None, since=now - timedelta(days=WINDOW_DAYS)))


def make_registry(db: Database) -> CollectorRegistry:
    """A registry of its own (not the process-global one) over ``db``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db))
    return registry


def make_runner_registry(db: Database) -> CollectorRegistry:
    """The database metrics plus this process's runner counters."""
    registry = make_registry(db)
    for collector in runner_metrics.collectors():
        registry.register(collector)
    return registry


def serve_runner_metrics(db: Database, port: int, host: str = "127.0.0.1") -> Any:
    """Serve ``make_runner_registry(db)`` over HTTP; returns the server (``shutdown()``)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=make_runner_registry(db))
