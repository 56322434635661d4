"""Prints the result tables the reliability tests recorded (see report.py)."""

from __future__ import annotations

import pytest

from tests.reliability.report import TABLE_PROPERTY

_tables: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Runs where the report arrives: in the only process, or in xdist's controller.
    if report.when == "call":
        _tables.extend(str(value) for name, value in report.user_properties if name == TABLE_PROPERTY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _tables:
        terminalreporter.section("reliability and security results")
        for table in _tables:
            terminalreporter.write_line(table)
            terminalreporter.write_line("")
