"""An in-memory span exporter installed in-process for the duration of a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import core.telemetry.tracing


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on, spans kept in memory; the previous configuration comes back after."""
    monkeypatch.setattr(core.telemetry.tracing, "_configured", core.telemetry.tracing._configured)
    monkeypatch.setattr(core.telemetry.tracing, "_provider", core.telemetry.tracing._provider)
    exporter = InMemorySpanExporter()
    core.telemetry.tracing.use_exporter(exporter)
    yield exporter


# The channels' loopback SMTP server and clean channel environment (autouse).
from tests.integration.channels.conftest import channel_env, smtp  # noqa: E402, F401
