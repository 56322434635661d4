"""Execution logs: every agent step, tool call and model error, across
workflows and chat sessions, in the ``execution_logs`` table.

Writers add rows inside the transaction they already commit (``record``,
``record_all``); nothing here commits on its own. Readers filter with bound
parameters only (``LIKE`` patterns escape ``%``, ``_`` and the escape
character), page through the rows and export them as CSV. A tenant scope of
``None`` is the platform, which sees every tenant's rows; any other scope
sees only its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, false, func, select

from core.base.csv_cells import csv_text
from core.base.errors import InvalidLogFilter
from core.base.storable import holds_nul
from core.identity.permissions import Action, check
from core.store.tables import ExecutionLog, Workflow, utcnow
from core.store.tenancy import tenant_scope

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database

KINDS = ("agent_step", "tool_call", "model_error", "agent_error", "final_answer")
LEVELS = ("debug", "info", "warning", "error")
MAX_MESSAGE = 1000  # characters of a row's message
MAX_DATA = 8000  # characters of a row's data as JSON; longer data is kept clipped as text
EXPORT_LIMIT = 50_000  # rows in one CSV export
CSV_COLUMNS = (
    "id",
    "created_at",
    "tenant",
    "workflow_id",
    "session_id",
    "step_name",
    "agent",
    "kind",
    "level",
    "tool_name",
    "message",
    "duration_ms",
    "data",
)


def clip(text: Any, limit: int = MAX_MESSAGE) -> str:
    value = "" if text is None else text if isinstance(text, str) else json.dumps(text, default=str)
    return value if len(value) <= limit else value[: limit - 2] + " …"


def _plain_data(data: dict[str, Any] | None) -> dict[str, Any]:
    text = json.dumps(data or {}, default=str)
    if len(text) <= MAX_DATA:
        return dict(json.loads(text))
    return {"clipped": text[:MAX_DATA] + " …"}


# -- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogContext:
    """What every row of one agent run shares."""

    tenant: str | None = None
    workflow_id: str | None = None
    session_id: str | None = None
    step_name: str | None = None
    agent: str | None = None


@dataclass
class LogEntry:
    """One row to write, before its context is added."""

    kind: str
    message: str
    level: str = "info"
    tool_name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: int | None = None


def record(
    session: Session,
    kind: str,
    message: str,
    *,
    level: str = "info",
    tenant: str | None = None,
    workflow_id: str | None = None,
    session_id: str | None = None,
    step_name: str | None = None,
    agent: str | None = None,
    tool_name: str | None = None,
    data: dict[str, Any] | None = None,
    duration_ms: int | None = None,
) -> ExecutionLog:
    """Add one row to ``session`` (the caller's transaction commits it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown execution log kind {kind!r} (known: {', '.join(KINDS)})")
    if level not in LEVELS:
        raise ValueError(f"unknown execution log level {level!r} (known: {', '.join(LEVELS)})")
    row = ExecutionLog(
        created_at=utcnow(),
        tenant=tenant,
        workflow_id=workflow_id,
        session_id=session_id,
        step_name=clip(step_name, 200) if step_name else None,
        agent=clip(agent, 100) if agent else None,
        kind=kind,
        level=level,
        tool_name=clip(tool_name, 200) if tool_name else None,
        message=clip(message),
        data=_plain_data(data),
        duration_ms=duration_ms,
    )
    session.add(row)
    return row


def record_all(session: Session, context: LogContext, entries: list[LogEntry]) -> None:
    for entry in entries:
        record(
            session,
            entry.kind,
            entry.message,
            level=entry.level,
            tool_name=entry.tool_name,
            data=entry.data,
            duration_ms=entry.duration_ms,
            **asdict(context),
        )


def workflow_tenant(session: Session, workflow_id: str) -> str | None:
    return session.scalar(select(Workflow.tenant).where(Workflow.id == workflow_id))


def step_entries(step: dict[str, Any]) -> list[LogEntry]:
    """The agent_step row (and an agent_error row if the step failed) of one agent
    step, from the data the handler records for its ``agent.step`` event."""
    calls = [c["name"] for c in step.get("tool_calls") or [] if c.get("name")]
    summary = clip(step.get("model_output"), 300) if step.get("model_output") else ""
    message = f"Step {step.get('step_number')}: " + (
        f"called {', '.join(calls)}" if calls else summary or "no tool call"
    )
    duration = step.get("duration")
    entries = [
        LogEntry(
            "agent_step",
            message,
            "warning" if step.get("error") else "info",
            data={
                k: step.get(k)
                for k in ("step_number", "model_output", "tool_calls", "observations", "token_usage", "final")
            },
            duration_ms=round(float(duration) * 1000) if duration is not None else None,
        )
    ]
    if step.get("error"):
        entries.append(
            LogEntry(
                "agent_error",
                f"Step {step.get('step_number')}: {step['error']}",
                "warning",
                data={"step_number": step.get("step_number")},
            )
        )
    return entries


def tool_entries(records: list[dict[str, Any]]) -> list[LogEntry]:
    """tool_call rows for calls that ran (``RunContext.records``)."""
    return [
        LogEntry(
            "tool_call",
            clip(
                f"{r.get('tool')}({json.dumps(r.get('args'), default=str)})"
                f" -> {json.dumps(r.get('result'), default=str)}"
            ),
            tool_name=str(r.get("tool")),
            data={"arguments": r.get("args"), "result": r.get("result")},
        )
        for r in records
    ]


def held_entry(tool: str, arguments: dict[str, Any], kind: str) -> LogEntry:
    what = "asked a person" if kind == "request" else "held for approval"
    return LogEntry(
        "tool_call",
        clip(f"{tool}({json.dumps(arguments, default=str)}) {what}"),
        tool_name=tool,
        data={"arguments": arguments, "held": True, "kind": kind},
    )


def error_entry(exc: BaseException) -> LogEntry:
    """model_error when the model call failed, agent_error for any other failure of a run."""
    from smolagents.utils import AgentGenerationError

    model_failed = isinstance(exc, AgentGenerationError)
    inner = exc.__cause__ if model_failed and exc.__cause__ is not None else exc
    return LogEntry(
        "model_error" if model_failed else "agent_error",
        clip(f"{type(inner).__name__}: {inner}"),
        "error",
        data={"error_type": type(exc).__name__},
    )


def final_entry(result: Any, steps: int) -> LogEntry:
    return LogEntry("final_answer", clip(result), data={"steps": steps})


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFilters:
    """What to show. Text fields match case-insensitively: ids by prefix, the rest
    anywhere (``text`` searches the message)."""

    since: datetime | None = None
    until: datetime | None = None
    kinds: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    workflow_id: str | None = None
    session_id: str | None = None
    agent: str | None = None
    tool_name: str | None = None
    text: str | None = None
    # Narrows a platform user's view to one tenant; never widens a tenant's.
    tenant: str | None = None

    def check(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS] + [lv for lv in self.levels if lv not in LEVELS]
        if unknown:
            raise InvalidLogFilter(
                f"Unknown kind or level {unknown[0]!r}; kinds: {', '.join(KINDS)}; "
                f"levels: {', '.join(LEVELS)}."
            )
        if self.since and self.until and self.since > self.until:
            raise InvalidLogFilter("The time range ends before it starts.")


@dataclass(frozen=True)
class LogRow:
    id: int
    created_at: datetime
    tenant: str | None
    workflow_id: str | None
    session_id: str | None
    step_name: str | None
    agent: str | None
    kind: str
    level: str
    tool_name: str | None
    message: str
    duration_ms: int | None
    data: dict[str, Any]


@dataclass(frozen=True)
class LogPage:
    rows: list[LogRow]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _filtered(statement: Select[Any], filters: LogFilters, viewer_tenant: str | None) -> Select[Any]:
    filters.check()
    if holds_nul(
        filters.tenant,
        filters.workflow_id,
        filters.session_id,
        filters.agent,
        filters.tool_name,
        filters.text,
    ):
        return statement.where(false())
    statement = tenant_scope(viewer_tenant).apply(statement, ExecutionLog.tenant)
    if viewer_tenant is None and filters.tenant:  # the platform narrowing its view to one tenant
        statement = statement.where(ExecutionLog.tenant == filters.tenant)
    if filters.since:
        statement = statement.where(ExecutionLog.created_at >= filters.since)
    if filters.until:
        statement = statement.where(ExecutionLog.created_at <= filters.until)
    if filters.kinds:
        statement = statement.where(ExecutionLog.kind.in_(filters.kinds))
    if filters.levels:
        statement = statement.where(ExecutionLog.level.in_(filters.levels))
    for column, value in (
        (ExecutionLog.workflow_id, filters.workflow_id),
        (ExecutionLog.session_id, filters.session_id),
    ):
        if value and value.strip():
            statement = statement.where(func.lower(column).startswith(value.strip().lower(), autoescape=True))
    for column, value in (
        (ExecutionLog.agent, filters.agent),
        (ExecutionLog.tool_name, filters.tool_name),
        (ExecutionLog.message, filters.text),
    ):
        if value and value.strip():
            statement = statement.where(func.lower(column).contains(value.strip().lower(), autoescape=True))
    return statement


def _row(log: ExecutionLog) -> LogRow:
    return LogRow(**{f.name: getattr(log, f.name) for f in fields(LogRow)})


def query(
    db: Database,
    filters: LogFilters,
    viewer_tenant: str | None,
    page: int = 1,
    page_size: int = 50,
    *,
    actor: str | None = None,
) -> LogPage:
    """One page of matching rows, newest first, and how many match in all.

    With ``actor``, reading needs ``audit:read`` (core.identity.permissions)."""
    page_size = max(1, min(page_size, 1000))
    with db.read() as session:
        if actor is not None:
            check(session, actor, Action.AUDIT_READ)
        total = int(
            session.scalar(_filtered(select(func.count(ExecutionLog.id)), filters, viewer_tenant)) or 0
        )
        last_page = max(1, -(-total // page_size))
        page = max(1, min(page, last_page))
        logs = session.scalars(
            _filtered(select(ExecutionLog), filters, viewer_tenant)
            .order_by(ExecutionLog.created_at.desc(), ExecutionLog.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
        return LogPage([_row(log) for log in logs], total, page, page_size)


def export_rows(
    db: Database,
    filters: LogFilters,
    viewer_tenant: str | None,
    limit: int = EXPORT_LIMIT,
    *,
    actor: str | None = None,
) -> list[LogRow]:
    """Every matching row (at most ``limit``), oldest first, for a CSV export
    (with ``actor``: ``audit:read``)."""
    with db.read() as session:
        if actor is not None:
            check(session, actor, Action.AUDIT_READ)
        logs = session.scalars(
            _filtered(select(ExecutionLog), filters, viewer_tenant)
            .order_by(ExecutionLog.created_at, ExecutionLog.id)
            .limit(limit)
        ).all()
        return [_row(log) for log in logs]


def to_csv(rows: list[LogRow]) -> str:
    """CSV with a header row; ``data`` is a JSON object per row, times are ISO 8601 UTC.
    Model and tool text never runs as a spreadsheet formula (core.base.csv_cells)."""
    records = (
        {
            **asdict(row),
            "created_at": row.created_at.isoformat(),
            "data": json.dumps(row.data, default=str, sort_keys=True),
        }
        for row in rows
    )
    return csv_text(CSV_COLUMNS, ([record[c] for c in CSV_COLUMNS] for record in records))


__all__ = [
    "KINDS",
    "LEVELS",
    "LogContext",
    "LogEntry",
    "LogFilters",
    "LogPage",
    "LogRow",
    "record",
    "record_all",
    "query",
    "export_rows",
    "to_csv",
    "workflow_tenant",
    "step_entries",
    "tool_entries",
    "held_entry",
    "error_entry",
    "final_entry",
]
