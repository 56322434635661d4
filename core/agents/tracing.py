"""OpenTelemetry spans per workflow step and per agent run.

Off by default (the API's no-op tracer costs next to nothing).
``COUNTERSIGN_OTEL=console`` prints spans to stderr; any other exporter can be
configured by installing an SDK tracer provider before Countersign starts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

OTEL_ENV = "COUNTERSIGN_OTEL"
_configured = False
_lock = threading.Lock()


def _configure() -> None:
    global _configured
    with _lock:
        if _configured:
            return
        _configured = True
        if os.environ.get(OTEL_ENV, "").strip().lower() != "console":
            return
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(provider)


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span that is always ended, also when the body raises (or pauses)."""
    _configure()
    tracer = trace.get_tracer("countersign")
    attrs = {k: v if isinstance(v, str | int | float | bool) else str(v)
             for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, attributes=attrs, record_exception=False,
                                      set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("countersign.outcome", type(exc).__name__)
            raise
