"""Counters and histograms of one runner process (Prometheus instruments).

Counted where the work happens (the runner process that executed the step),
so each runner's /metrics shows its own share; Prometheus sums across runners.
The database-wide figures are computed at scrape time by ``core.ops.metrics``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.registry import Collector

from core.store.tables import utcnow

STEP_OUTCOMES = ("completed", "failed", "retrying", "skipped", "waiting_approval")
# Seconds from a decision's commit to the runner starting the next step.
RESUME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class RunnerMetrics:
    """Counters and histograms of one runner process (not registered globally)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.steps = Counter(
            "countersign_steps_executed",
            "Steps executed by this process, by type and outcome.",
            ["type", "outcome"],
            registry=None,
        )
        self.resume_latency = Histogram(
            "countersign_resume_latency_seconds",
            "From a decision's commit to the runner resuming the workflow after it.",
            buckets=RESUME_BUCKETS,
            registry=None,
        )
        self.errors = Counter(
            "countersign_runner_errors",
            "Exceptions caught in the runner loop, by where and kind (database or other).",
            ["where", "kind"],
            registry=None,
        )
        self.claims = Counter(
            "countersign_runner_claims", "Workflows claimed by this process.", registry=None
        )

    def collectors(self) -> list[Collector]:
        return [self.steps, self.resume_latency, self.errors, self.claims]

    def step(self, step_type: str, outcome: str) -> None:
        self.steps.labels(step_type, outcome).inc()

    def resumed(self, decided_at: Any) -> None:
        if decided_at is None:
            return
        if decided_at.tzinfo is None:  # SQLite returns naive UTC
            from datetime import UTC

            decided_at = decided_at.replace(tzinfo=UTC)
        self.resume_latency.observe(max(0.0, (utcnow() - decided_at).total_seconds()))

    def error(self, where: str, exc: BaseException) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        kind = "database" if isinstance(exc, SQLAlchemyError) else "other"
        self.errors.labels(where, kind).inc()


# One per process: every executor and runner in it counts here.
runner_metrics = RunnerMetrics()
