"""Prints the result tables the reliability tests recorded (see report.py).

These are pytest hooks, imported by tests/conftest.py: that conftest is also
loaded by pytest-xdist's controller, where the reports arrive, whatever
paths the run was given."""

from __future__ import annotations

import pytest

from tests.reliability.report import (
    ATTACK_COLUMNS,
    ATTACK_PROPERTY,
    AVAILABILITY_COLUMNS,
    AVAILABILITY_PROPERTY,
    TABLE_PROPERTY,
    render,
)

_tables: list[str] = []
_attacks: list[tuple[str, int, int]] = []
_availability: list[tuple[str, ...]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Runs where the report arrives: in the only process, or in xdist's controller.
    if report.when == "call":
        _tables.extend(str(value) for name, value in report.user_properties if name == TABLE_PROPERTY)
        _attacks.extend(tuple(value) for name, value in report.user_properties if name == ATTACK_PROPERTY)
        _availability.extend(
            tuple(value) for name, value in report.user_properties if name == AVAILABILITY_PROPERTY
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tables = list(_tables)
    if _attacks:
        # One row per attack class, summed over its runs (SQLite and PostgreSQL).
        totals: dict[str, list[int]] = {}
        for attack, attempts, refused in _attacks:
            row = totals.setdefault(attack, [0, 0])
            row[0] += attempts
            row[1] += refused
        rows = [(attack, *counts) for attack, counts in sorted(totals.items())]
        tables.append(render("Security: every attempt refused or inert", ATTACK_COLUMNS, rows))
    if _availability:
        tables.append(
            render(
                "Availability under hostile input (the service kept answering)",
                AVAILABILITY_COLUMNS,
                sorted(_availability),
            )
        )
    if tables:
        terminalreporter.section("reliability and security results")
        for table in tables:
            terminalreporter.write_line(table)
            terminalreporter.write_line("")
