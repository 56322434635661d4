"""OpenTelemetry spans per agent run: ``core.telemetry.tracing`` (kept for existing imports)."""

from __future__ import annotations

from core.telemetry.tracing import OTEL_ENV, span

__all__ = ["OTEL_ENV", "span"]
