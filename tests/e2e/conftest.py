"""Browser fixtures: a real `streamlit run app.py` on a free loopback port,
against a fresh SQLite database holding the demo, driven by Playwright through
Debian's Chromium (/usr/bin/chromium; no browser is ever downloaded).

Without Chromium the browser tests are skipped with the reason, except under
CI (``CI`` set), where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import (
    UI_TIMEOUT_MS,
    VIEWPORT,
    Dashboard,
    prepare_demo,
    require_chromium,
    start_dashboard,
    stop,
)

FAILED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return bool(request.node.stash.get(FAILED, False))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test marked ``each_database`` gets its dashboard on the embedded SQLite file
    # and, once more, on PostgreSQL (marked ``postgres``, as ``db_url``'s second case).
    if "dashboard" in metafunc.fixturenames and metafunc.definition.get_closest_marker("each_database"):
        metafunc.parametrize(
            "dashboard_database",
            ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
            indirect=True,
        )


@pytest.fixture
def dashboard_database(request: pytest.FixtureRequest) -> str:
    """The URL of the dashboard's database: SQLite unless the test is ``each_database``."""
    backend = getattr(request, "param", "sqlite")
    return str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))


@pytest.fixture
def dashboard(dashboard_database: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Dashboard]:
    """The dashboard with its in-process runner, over a fresh demo database
    whose workflows have all been run up to their first approval."""
    require_chromium()
    prepare_demo(dashboard_database)
    app = start_dashboard(dashboard_database, tmp_path)
    try:
        yield app
    finally:
        stop(app.process)
        if _failed(request):
            print(f"--- streamlit log ({app.log_path}) ---\n{app.log()}")


# ``chromium`` (one browser per test process, shared by every directory's browser
# tests) is in tests/conftest.py.


@pytest.fixture
def page(chromium: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    browser_page = context.new_page()
    try:
        yield browser_page
    finally:
        if _failed(request):
            shot = tmp_path / "failure.png"
            browser_page.screenshot(path=str(shot))
            print(f"screenshot of the page at the failure: {shot}")
        context.close()
