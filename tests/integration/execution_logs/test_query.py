"""Filters, tenant scope, paging and CSV export of execution logs, on SQLite and
PostgreSQL. Filter text is data: SQL and LIKE metacharacters match themselves."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select, update

from core.agents import execution_logs
from core.agents.execution_logs import CSV_COLUMNS, LogFilters, query, record
from core.base.errors import InvalidLogFilter
from core.store.db import Database
from core.store.tables import ExecutionLog, utcnow

WF_A = "aaaaaaaa-0000-4000-8000-000000000001"
WF_B = "bbbbbbbb-0000-4000-8000-000000000002"
SESSION = "5e55e55e-0000-4000-8000-000000000003"


def seed(db: Database) -> None:
    with db.session() as session:
        record(
            session,
            "agent_step",
            "Step 1: called lookup",
            workflow_id=WF_A,
            step_name="s",
            agent="refunds",
            tenant="acme",
            duration_ms=12,
            data={"step_number": 1},
        )
        record(
            session,
            "tool_call",
            "lookup() -> 100% done",
            workflow_id=WF_A,
            tool_name="lookup",
            agent="refunds",
            tenant="acme",
            data={"arguments": {}, "result": "100% done"},
        )
        record(
            session,
            "model_error",
            "RuntimeError: a_b broke",
            level="error",
            workflow_id=WF_B,
            agent="deployer",
            tenant="globex",
        )
        record(
            session,
            "agent_step",
            "session turn: 'hello', \"quoted\"\nsecond line",
            session_id=SESSION,
            agent="helpdesk",
            tenant=None,
        )
        record(session, "final_answer", "abc", workflow_id=WF_B, agent="deployer", tenant="globex")
    with db.session() as session:  # one row from last week
        oldest = session.scalar(select(func.min(ExecutionLog.id)))
        session.execute(
            update(ExecutionLog)
            .where(ExecutionLog.id == oldest)
            .values(created_at=utcnow() - timedelta(days=8))
        )


def messages(db: Database, filters: LogFilters, scope: str | None = None) -> list[str]:
    return sorted(r.message for r in execution_logs.export_rows(db, filters, scope))


def test_filters_narrow_the_rows(db: Database) -> None:
    seed(db)
    everything = messages(db, LogFilters())
    assert len(everything) == 5
    assert messages(db, LogFilters(kinds=("model_error", "final_answer"))) == [
        "RuntimeError: a_b broke",
        "abc",
    ]
    assert messages(db, LogFilters(levels=("error",))) == ["RuntimeError: a_b broke"]
    assert messages(db, LogFilters(workflow_id="AAAA")) == [  # an id's first characters, any case
        "Step 1: called lookup",
        "lookup() -> 100% done",
    ]
    assert len(messages(db, LogFilters(session_id=SESSION))) == 1
    assert messages(db, LogFilters(agent="DEPLOY")) == ["RuntimeError: a_b broke", "abc"]
    assert messages(db, LogFilters(tool_name="look")) == ["lookup() -> 100% done"]
    assert messages(db, LogFilters(text="CALLED")) == ["Step 1: called lookup"]
    assert len(messages(db, LogFilters(since=utcnow() - timedelta(days=7)))) == 4
    assert messages(db, LogFilters(until=utcnow() - timedelta(days=7))) == ["Step 1: called lookup"]
    assert messages(db, LogFilters(kinds=("tool_call",), agent="deployer")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("%", ["lookup() -> 100% done"]),
        ("_", ["RuntimeError: a_b broke"]),
        ("a_b", ["RuntimeError: a_b broke"]),
        ("\\", []),
        ("'", ["session turn: 'hello', \"quoted\"\nsecond line"]),
        ("'; DROP TABLE execution_logs; --", []),
        ('" OR 1=1 --', []),
    ],
)
def test_metacharacters_in_filters_are_inert(db: Database, text: str, expected: list[str]) -> None:
    seed(db)
    assert messages(db, LogFilters(text=text)) == expected
    assert messages(db, LogFilters(agent=text, tool_name=text, workflow_id=text)) == []
    assert len(messages(db, LogFilters())) == 5  # the table is still there, whole


def test_tenants_see_only_their_rows(db: Database) -> None:
    seed(db)
    assert messages(db, LogFilters(), "acme") == ["Step 1: called lookup", "lookup() -> 100% done"]
    assert messages(db, LogFilters(), "nobody") == []
    # The platform may narrow to one tenant; a tenant's filter never widens its scope.
    assert messages(db, LogFilters(tenant="globex")) == ["RuntimeError: a_b broke", "abc"]
    assert messages(db, LogFilters(tenant="globex"), "acme") == [
        "Step 1: called lookup",
        "lookup() -> 100% done",
    ]


def test_pages_newest_first(db: Database) -> None:
    with db.session() as session:
        for n in range(120):
            record(session, "agent_step", f"step {n:03d}", workflow_id=WF_A)
    first = query(db, LogFilters(), None, page=1, page_size=50)
    assert (first.total, first.pages, len(first.rows)) == (120, 3, 50)
    assert first.rows[0].message == "step 119"
    last = query(db, LogFilters(), None, page=99, page_size=50)
    assert (last.page, len(last.rows), last.rows[-1].message) == (3, 20, "step 000")


def test_bad_filters_are_refused(db: Database) -> None:
    with pytest.raises(InvalidLogFilter, match="Unknown kind or level 'bogus'"):
        query(db, LogFilters(kinds=("bogus",)), None)
    with pytest.raises(InvalidLogFilter, match="ends before it starts"):
        query(db, LogFilters(since=utcnow(), until=utcnow() - timedelta(hours=1)), None)
    with db.session() as session, pytest.raises(ValueError, match="unknown execution log kind"):
        record(session, "chatter", "x")


def test_long_messages_are_clipped(db: Database) -> None:
    with db.session() as session:
        record(session, "tool_call", "x" * 5000, tool_name="t" * 300, data={"blob": "y" * 20000})
    [row] = execution_logs.export_rows(db, LogFilters(), None)
    assert len(row.message) == execution_logs.MAX_MESSAGE and row.message.endswith(" …")
    assert len(row.tool_name or "") == 200
    assert list(row.data) == ["clipped"] and len(row.data["clipped"]) <= execution_logs.MAX_DATA + 2


def test_csv_round_trips_through_pandas(db: Database) -> None:
    seed(db)
    rows = execution_logs.export_rows(db, LogFilters(), None)
    frame = pd.read_csv(io.StringIO(execution_logs.to_csv(rows)), keep_default_na=False)
    assert list(frame.columns) == list(CSV_COLUMNS)
    assert len(frame) == 5
    assert list(frame["id"]) == [r.id for r in rows]  # oldest first
    assert list(frame["message"]) == [r.message for r in rows]  # quotes, commas, newlines kept
    assert [json.loads(d) for d in frame["data"]] == [r.data for r in rows]
    assert [pd.Timestamp(t) for t in frame["created_at"]] == [pd.Timestamp(r.created_at) for r in rows]
    assert list(frame["tenant"]) == [r.tenant or "" for r in rows]
    assert execution_logs.to_csv([]).strip() == ",".join(CSV_COLUMNS)
