"""The command line starts without the heavy half of the product.

``--help`` and usage errors import typer and the ``cli`` modules only: the
database layer, settings, logging and the agent libraries are imported when a
command runs. Checked on the modules ``python -X importtime`` reports for a
real ``python -m core`` process, not on a clock (bench/cli.py measures time).
Also: whatever a command logs goes to stderr; stdout is its output alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.store.db import Database
from core.store.migrate import current_revision, head_revision, upgrade
from core.store.schema_version import newest_revision
from tests.acceptance.core.conftest import CLI_TIMEOUT, ROOT, cli, cli_env

# Loaded by a command that runs, never by --help: the database layer, our store,
# the agent library, logging and settings, and pydantic (typer uses it to check
# options, which --help must not trigger).
HEAVY = ("sqlalchemy", "core.store", "smolagents", "structlog", "pydantic_settings", "pydantic")


def imported_modules(*args: str, db_url: str = "sqlite:///nowhere/never-opened.db") -> set[str]:
    """Every module ``python -m core ARGS`` imports (from ``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "core", *args],
        cwd=ROOT,
        env=cli_env(db_url),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert done.returncode in (0, 2), done.stderr
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("workflow", "list", "--help"),
        ("agents", "teams", "start", "--help"),
        ("workflow", "list", "--no-such-option"),  # a usage error (exit 2)
    ],
)
def test_help_and_usage_errors_do_not_import_the_heavy_modules(args: tuple[str, ...]) -> None:
    modules = imported_modules(*args)
    assert "cli.main" in modules and "cli.workflows" in modules  # the probe sees our imports
    assert heavy_among(modules) == []


def test_a_command_that_runs_does_import_them(db_url: str) -> None:
    # The counter-check: the probe above would see these if they were loaded.
    modules = imported_modules("runner", "--until-idle", db_url=db_url)
    assert {"sqlalchemy", "core.store", "structlog", "core.engine.runner"} <= modules


# A listing reads the tables and prints: it never needs the engines, the
# migrations (once the schema is at the newest), logging or the libraries
# behind validation, metrics, tracing and agents.
NOT_FOR_A_LISTING = (
    "alembic",
    "structlog",
    "smolagents",
    "jsonschema",
    "prometheus_client",
    "opentelemetry",
    "core.engine.runner",
    "core.engine.executor",
    "core.approvals.engine",
)


@pytest.mark.parametrize("listing", [("approvals", "list", "--json"), ("workflow", "list", "--json")])
def test_a_listing_imports_the_tables_and_nothing_of_the_engine(
    db_url: str, listing: tuple[str, ...]
) -> None:
    cli(db_url, "demo")  # migrates the database and gives the listing rows to read
    modules = imported_modules(*listing, db_url=db_url)
    assert {"sqlalchemy", "core.store.schema", "core.records.listing"} <= modules
    loaded = sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_FOR_A_LISTING))
    assert loaded == []


# What a listing answers without: the ORM and the mapped classes (a listing is Core
# queries on the tables, core.store.schema), Alembic (the schema is at the newest),
# and pydantic (settings are not read when DATABASE_URL is set, and typer's option
# checks go through cli.coercion for plain text and whole numbers).
NOT_FOR_ANY_LISTING = ("sqlalchemy.orm", "core.store.tables", "alembic", "pydantic", "pydantic_core")
LISTINGS = [
    ("approvals", "list"),
    ("approvals", "list", "--json"),
    ("approvals", "list", "--json", "--as", "carol@example.com", "--limit", "5"),
    ("approvals", "list", "--for", "finance", "--json"),
    ("workflow", "list"),
    ("workflow", "list", "--json"),
    ("workflow", "list", "--json", "--status", "waiting_approval", "--search", "order", "--offset", "0"),
]


@pytest.mark.parametrize("listing", LISTINGS, ids=" ".join)
def test_a_listing_answers_without_the_orm_alembic_or_pydantic(db_url: str, listing: tuple[str, ...]) -> None:
    cli(db_url, "demo")
    modules = imported_modules(*listing, db_url=db_url)
    assert {"sqlalchemy", "core.records.listing"} <= modules  # it did open the database and read
    loaded = sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_FOR_ANY_LISTING))
    assert loaded == []


def test_a_listing_on_sqlite_imports_no_postgresql_dialect(sqlite_url: str) -> None:
    """The JSON columns are JSONB on PostgreSQL, but SQLAlchemy's PostgreSQL package
    (all its drivers' modules) is imported only when a PostgreSQL engine needs it."""
    cli(sqlite_url, "demo")
    modules = imported_modules("approvals", "list", "--json", db_url=sqlite_url)
    assert "core.store.schema" in modules
    assert sorted(m for m in modules if m.startswith("sqlalchemy.dialects.postgresql")) == []


def test_a_listing_on_a_database_behind_the_newest_migration_migrates_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    try:
        upgrade(db, "0012")
    finally:
        db.dispose()
    modules = imported_modules("approvals", "list", "--json", db_url=url)
    assert "alembic" in modules  # not at the newest: Alembic brought it there
    db = Database(url)
    try:
        assert current_revision(db) == newest_revision() == head_revision(db)
    finally:
        db.dispose()


def test_logs_go_to_stderr_and_stdout_is_the_output_alone(db_url: str) -> None:
    cli(db_url, "demo")
    env = cli_env(db_url, COUNTERSIGN_LOG_LEVEL="DEBUG", COUNTERSIGN_LOG_FORMAT="json")
    ran = subprocess.run(
        [sys.executable, "-m", "core", "runner", "--until-idle"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [ran.stdout.strip()]
    assert ran.stdout.startswith("idle after ")
    logged = [json.loads(line) for line in ran.stderr.splitlines() if line.startswith("{")]
    assert any(entry["event"] == "step started" for entry in logged)

    listed = subprocess.run(
        [sys.executable, "-m", "core", "approvals", "list", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) >= 3  # stdout parses whole: no log line in it
