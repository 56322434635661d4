"""Result tables of the reliability suite, printed at the end of the run.

A test builds a table and hands it to ``show``: it goes into the test's
``user_properties`` (so it survives pytest-xdist, whose workers send them to
the controller, and lands in a JUnit XML report) and ``summary.py`` (hooks
that tests/conftest.py imports) prints every table in the terminal summary,
captured output or not. Security tests add rows (attack, attempts, refused or inert) with ``record_attacks``;
they are printed as one table.

``FaultResult`` is one row of the fault-injection table: one scenario (a run
under some fault) and the four counts that must all be 0. Other scenarios
(e.g. "PostgreSQL restarted") add their own row with the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

TABLE_PROPERTY = "reliability_table"
ATTACK_PROPERTY = "security_attack"
ATTACK_COLUMNS = ("attack", "attempts", "refused or inert")
AVAILABILITY_PROPERTY = "availability_row"
AVAILABILITY_COLUMNS = ("attack", "attempts", "refused", "time to answer (ms)", "probe latency (ms)")

FAULT_COLUMNS = (
    "scenario",
    "workflows lost",
    "stuck",
    "steps run twice without their idempotency key",
    "notifications lost",
)


@dataclass(frozen=True)
class FaultResult:
    scenario: str
    workflows_lost: int
    stuck: int
    steps_twice_without_key: int
    notifications_lost: int

    def counts(self) -> tuple[int, int, int, int]:
        return (self.workflows_lost, self.stuck, self.steps_twice_without_key, self.notifications_lost)

    @property
    def clean(self) -> bool:
        return not any(self.counts())


def render(title: str, headers: tuple[str, ...] | list[str], rows: list[tuple[Any, ...]]) -> str:
    """A plain-text table with a title line."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([title, line(cells[0]), rule, *(line(r) for r in cells[1:])])


def fault_table(results: list[FaultResult]) -> str:
    return render(
        "Fault injection (every count must be 0)", FAULT_COLUMNS, [(r.scenario, *r.counts()) for r in results]
    )


def show(request: pytest.FixtureRequest, text: str) -> None:
    """Print ``text`` in the terminal summary of this run (and keep it in the report)."""
    request.node.user_properties.append((TABLE_PROPERTY, text))


@dataclass
class AttackTally:
    """Attempts of one attack class and how many were refused or rendered inert."""

    attack: str
    attempts: int = 0
    refused: int = 0
    failures: list[str] | None = None

    def check(self, refused: bool, what: str) -> None:
        """Count one attempt; ``refused`` says it was refused or came out inert."""
        self.attempts += 1
        self.refused += int(refused)
        if not refused:
            self.failures = [*(self.failures or []), what]


def record_attacks(request: pytest.FixtureRequest, tally: AttackTally) -> None:
    """One row of the security table, printed at the end of the run."""
    request.node.user_properties.append((ATTACK_PROPERTY, (tally.attack, tally.attempts, tally.refused)))


def record_availability(
    request: pytest.FixtureRequest,
    attack: str,
    attempts: int,
    refused: int | str,
    answer_ms: float | None,
    probe_ms: float | None,
) -> None:
    """One row of the availability table (hostile input), printed at the end of the run."""
    row = (
        attack,
        attempts,
        refused,
        "-" if answer_ms is None else f"{answer_ms:.0f}",
        "-" if probe_ms is None else f"{probe_ms:.0f}",
    )
    request.node.user_properties.append((AVAILABILITY_PROPERTY, row))
