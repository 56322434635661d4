"""OpenTelemetry tracing: one trace per workflow run, across processes.

``COUNTERSIGN_OTEL`` chooses the exporter: ``off`` (default: the API's no-op
tracer, nothing read from the database), ``console`` (spans as JSON on
stderr) or ``otlp`` (OTLP/HTTP protobuf to ``OTEL_EXPORTER_OTLP_ENDPOINT``,
default ``http://localhost:4318``; the exporter reads the other standard
``OTEL_EXPORTER_OTLP_*`` variables itself; ``OTEL_SERVICE_NAME`` names the
service, ``countersign`` by default).

How one trace spans processes: when a workflow is created a root span
``workflow <name>`` is started and ended at once, and its W3C
``traceparent`` is stored in ``workflows.trace_context``. Whichever runner
process later claims the workflow makes that stored context current while it
executes (``workflow_context``), so every ``step <name>`` span, and the agent
runs inside them, are its children. A span cannot stay open across processes
(or a restart), so the approval wait is recorded at decision time, by the
process that decides, with ``start_time`` = the request's ``created_at``
(``_record_approval_waits``). Deliveries are spans in the dispatcher whose
parent is the notification's workflow's stored context.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.store.tables import ApprovalRequest, Notification, Workflow, WorkflowEvent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from core.store.db import Database

OTEL_ENV = "COUNTERSIGN_OTEL"
MODES = ("off", "console", "otlp")
SERVICE_NAME_ENV = "OTEL_SERVICE_NAME"
DEFAULT_SERVICE_NAME = "countersign"
TRACER_NAME = "countersign"
# The audit events that close an approval request, hence its wait span.
CLOSING_EVENTS = ("approval.decided", "approval.cancelled")
_PENDING_WAITS = "countersign_trace_waits"

_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_configured = False
_provider: TracerProvider | None = None


def mode() -> str:
    """The configured exporter; an unknown value counts as ``off`` (and says so on stderr)."""
    value = (os.environ.get(OTEL_ENV) or "off").strip().lower()
    if value not in MODES:
        print(
            f"countersign: {OTEL_ENV}={value!r} is not one of {', '.join(MODES)}; tracing is off",
            file=sys.stderr,
        )
        return "off"
    return value


def _new_provider(exporter: SpanExporter, *, batch: bool) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": os.environ.get(SERVICE_NAME_ENV) or DEFAULT_SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    # A batch processor flushes at exit (the provider registers that itself).
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider


def configure() -> bool:
    """Install the exporter ``COUNTERSIGN_OTEL`` names, once; whether tracing is on."""
    global _configured, _provider
    if _configured:  # the fast path, taken on every span and flush
        return _provider is not None
    with _lock:
        if _configured:
            return _provider is not None
        _configured = True
        chosen = mode()
        if chosen == "off":
            return False
        if chosen == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            # stderr: stdout carries the CLI's own output (``--json``).
            _provider = _new_provider(ConsoleSpanExporter(out=sys.stderr), batch=False)
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider = _new_provider(OTLPSpanExporter(), batch=True)
        trace.set_tracer_provider(_provider)
        return True


def use_exporter(exporter: SpanExporter | None) -> None:
    """Send spans to ``exporter`` from now on (tests: an in-memory exporter); None: off."""
    global _configured, _provider
    with _lock:
        _configured = True
        _provider = _new_provider(exporter, batch=False) if exporter is not None else None


def enabled() -> bool:
    return configure()


def tracer() -> trace.Tracer:
    if configure() and _provider is not None:
        return _provider.get_tracer(TRACER_NAME)
    # Off: the API's tracer, a no-op unless the host application installed a provider.
    return trace.get_tracer(TRACER_NAME)


def _attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool) else str(v)
        for k, v in attributes.items()
        if v is not None
    }


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A child of the current span that is always ended, also when the body raises (or pauses)."""
    with tracer().start_as_current_span(
        name, attributes=_attributes(attributes), record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("countersign.outcome", type(exc).__name__)
            raise


# -- the stored context ------------------------------------------------------------


def root_context(workflow_id: str, name: str) -> dict[str, Any]:
    """Start (and end) a workflow's root span; its traceparent to store. ``{}`` when off."""
    if not enabled():
        return {}
    root = tracer().start_span(
        f"workflow {name}",
        context=otel_context.Context(),
        attributes={"workflow_id": workflow_id, "workflow.name": name},
    )
    root.end()
    carrier: dict[str, Any] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(root))
    return carrier


def context_of(stored: dict[str, Any] | None) -> otel_context.Context | None:
    """The OpenTelemetry context a stored traceparent stands for (None if there is none)."""
    if not stored or "traceparent" not in stored:
        return None
    extracted = _propagator.extract(carrier={k: str(v) for k, v in stored.items()})
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted


@contextmanager
def workflow_context(db: Database, workflow_id: str) -> Iterator[None]:
    """Make a workflow's stored trace context current (a runner executing it).

    A workflow created while tracing was off gets its root now; the caller
    holds the workflow's lease, so no other runner writes it meanwhile.
    """
    if not enabled():
        yield
        return
    with db.read() as session:
        stored = session.scalar(select(Workflow.trace_context).where(Workflow.id == workflow_id))
    if stored is not None and context_of(stored) is None:
        with db.session() as session:
            row = session.get(Workflow, workflow_id)
            if row is not None:
                stored = row.trace_context = root_context(row.id, row.name)
    ctx = context_of(stored)
    token = otel_context.attach(ctx) if ctx is not None else None
    try:
        yield
    finally:
        if token is not None:
            otel_context.detach(token)


@contextmanager
def delivery_span(db: Database, notification_id: str, channel: str, kind: str) -> Iterator[trace.Span | None]:
    """A delivery's span, a child of its workflow's stored context when it has one (None when off)."""
    if not enabled():
        yield None
        return
    with db.read() as session:
        stored = session.scalar(
            select(Workflow.trace_context)
            .join(Notification, Notification.workflow_id == Workflow.id)
            .where(Notification.id == notification_id)
        )
    parent = context_of(stored) or otel_context.Context()
    with tracer().start_as_current_span(
        f"delivery {channel}",
        context=parent,
        record_exception=False,
        attributes={"notification_id": notification_id, "channel": channel, "kind": kind},
    ) as current:
        yield current


# -- approval waits, recorded when a request closes ---------------------------------


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _collect_approval_waits(session: Session, _flush_context: Any, _instances: Any) -> None:
    if not enabled():
        return
    closing = [
        obj
        for obj in session.new
        if isinstance(obj, WorkflowEvent) and obj.event_type in CLOSING_EVENTS and obj.approval_id
    ]
    if not closing:
        return
    with session.no_autoflush:
        for event_row in closing:
            approval = session.get(ApprovalRequest, event_row.approval_id)
            if approval is None or approval.created_at is None:
                continue
            workflow = session.get(Workflow, approval.workflow_id) if approval.workflow_id else None
            session.info.setdefault(_PENDING_WAITS, []).append(
                {
                    "stored": dict(workflow.trace_context or {}) if workflow is not None else {},
                    "start": _ns(approval.created_at),
                    "end": _ns(approval.decided_at or event_row.created_at),
                    "attributes": _attributes(
                        {
                            "approval_id": approval.id,
                            "workflow_id": approval.workflow_id,
                            "step": approval.step_name,
                            "approval.type": approval.approval_type,
                            "approval.outcome": (event_row.after or {}).get("status"),
                            "approval.decided_by": approval.decided_by or event_row.actor,
                        }
                    ),
                }
            )


def _emit_approval_waits(session: Session) -> None:
    waits = session.info.pop(_PENDING_WAITS, None)
    if not waits:
        return
    for wait in waits:
        parent = context_of(wait["stored"]) or otel_context.Context()
        waited = tracer().start_span(
            "approval wait", context=parent, start_time=wait["start"], attributes=wait["attributes"]
        )
        waited.end(end_time=wait["end"])


def _drop_approval_waits(session: Session, _transaction: Any) -> None:
    session.info.pop(_PENDING_WAITS, None)


def register_session_hooks() -> None:
    """Record approval-wait spans from the rows a commit wrote (when tracing is on).
    Installed once per process by ``core.runtime``."""
    if not event.contains(Session, "before_flush", _collect_approval_waits):
        event.listen(Session, "before_flush", _collect_approval_waits)
        event.listen(Session, "after_commit", _emit_approval_waits)
        event.listen(Session, "after_soft_rollback", _drop_approval_waits)


__all__ = [
    "configure",
    "use_exporter",
    "enabled",
    "tracer",
    "span",
    "root_context",
    "context_of",
    "workflow_context",
    "delivery_span",
    "mode",
    "OTEL_ENV",
    "register_session_hooks",
]
