"""OpenTelemetry spans per agent run: ``core.tracing`` (kept for existing imports)."""

from __future__ import annotations

from core.tracing import OTEL_ENV, span

__all__ = ["OTEL_ENV", "span"]
