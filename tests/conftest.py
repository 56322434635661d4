"""Shared fixtures: a migrated database on SQLite and on PostgreSQL.

PostgreSQL: one template database is migrated once per test session and
every test gets a fresh clone (``CREATE DATABASE ... TEMPLATE``), which is
fast and isolates tests completely. Where no server answers, PostgreSQL
tests are skipped with the reason, except under CI, where they fail.
SQLite: one migrated file per session, copied per test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core.store.db import Database
from tests.helpers.engine import Calls
from tests.helpers.models import PYTHON_MODELS_ENV, TEST_PYTHON_MODELS

# Tests expect an approval without channels to queue an email row, as a
# deployment that sets COUNTERSIGN_DEFAULT_CHANNELS=email would; the "auto"
# default has its own test.
os.environ.setdefault("COUNTERSIGN_DEFAULT_CHANNELS", "email")
# The python model provider imports only the factories an operator allows; the tests'
# scripted models are allowed (tests/helpers/models.py).
os.environ.setdefault(PYTHON_MODELS_ENV, TEST_PYTHON_MODELS)

PG_ADMIN_URL = os.environ.get("COUNTERSIGN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = bool(os.environ.get("CI"))


def _pg_admin() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


def _url_for(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}".replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    try:
        with _pg_admin():
            pass
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL must answer in CI at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}: {exc}")
    name = f"cs_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(_url_for(name))
    db.upgrade()
    db.dispose()
    yield name
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this test."""
    name = f"cs_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _url_for(name)
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()  # closing the last connection folds the WAL into the file
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a fresh, migrated SQLite database file for this test."""
    path = tmp_path / "countersign.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    db = Database(sqlite_url)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL (marked ``postgres``,
    so ``-m "not postgres"`` is the fast lane)."""
    return str(request.getfixturevalue(f"{request.param}_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session", autouse=True)
def process_wiring() -> None:
    """What every Countersign process sets up when it opens its database (core.runtime):
    its session hooks and its tools (COUNTERSIGN_TOOL_MODULES and the demo's)."""
    from core.runtime import install_session_hooks, load_tools

    install_session_hooks()
    load_tools()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Demo and test users get passwords; scrypt at full cost would dominate these tests' time."""
    import core.identity.users

    monkeypatch.setattr(core.identity.users, "SCRYPT_N", 2**4)


@pytest.fixture
def calls() -> Calls:
    """Tool calls recorded by the test registries (thread-safe)."""
    return Calls()


# The reliability suite's result tables, printed at the end of any run that
# includes it (hooks, so they must be visible in this top-level conftest).
@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's Chromium under Playwright, one per test process for every directory's
    browser tests: a second sync Playwright in the same process (a module's own
    browser while the session's is open) fails with "using Playwright Sync API inside
    the asyncio loop", whichever tests xdist happens to give one worker."""
    from tests.e2e.server import open_chromium

    with open_chromium() as browser:
        yield browser


from tests.reliability.summary import pytest_runtest_logreport, pytest_terminal_summary  # noqa: E402, F401
