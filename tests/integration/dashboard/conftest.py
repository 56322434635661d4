"""Dashboard fixtures: the real app.py in Streamlit's AppTest over a fresh database.

AppTest runs in this process, so the app's services are pointed at the test
database through DATABASE_URL (read at call time and part of the cache key),
with RUNNER=external: tests drive a core Runner themselves.

The app is started from a one-line script that runs app.py (``runpy``), not
with ``AppTest.from_file("app.py")``: AppTest re-detects a ``pages/`` folder
beside the main script on every run and would then run page files without
app.py (Streamlit's old folder mode); a main script elsewhere has no such
folder. app.py registers its pages by absolute path, so nothing else changes.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import core.store.db
from core.approvals.engine import ApprovalEngine
from core.demo.scenarios import DEMO_PASSWORD, load_demo
from core.runtime import build_runner
from core.store.db import Database, normalise_url
from core.store.tables import ApprovalRequest

REPO = Path(__file__).resolve().parents[3]
ENTRY = f"import runpy\nrunpy.run_path({str(REPO / 'app.py')!r}, run_name='__main__')\n"
TIMEOUT = 60


def new_app() -> AppTest:
    return AppTest.from_string(ENTRY, default_timeout=TIMEOUT)


def page_path(name: str) -> str:
    return str(REPO / "pages" / f"{name}.py")


def sign_in(at: AppTest, email: str, password: str = DEMO_PASSWORD) -> AppTest:
    if not at.text_input:  # not run yet
        at.run()
    at.text_input(key="signin.email").input(email)
    at.text_input(key="signin.password").input(password)
    return at.button(key="signin.submit").click().run()


def open_page(at: AppTest, name: str, **params: str) -> AppTest:
    at.query_params.clear()
    at.query_params.update(params)
    return at.switch_page(page_path(name)).run()


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def all_text(at: AppTest) -> str:
    parts: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "success",
        "warning",
        "error",
    ):
        parts += texts(at, kind)
    return "\n".join(parts)


def visible(text: str) -> str:
    """Markdown source as a reader sees it: backslash escapes and the invisible word
    joiners that keep agent text from linking (components.text) taken out."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text).replace("\u2060", "")


def shown_text(at: AppTest) -> str:
    """``all_text`` as a reader sees it (``visible``)."""
    return visible(all_text(at))


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def pending_for(db: Database, email: str) -> list[ApprovalRequest]:
    return ApprovalEngine(db).list_pending_approvals(requested_from=email)


@contextlib.contextmanager
def _app_over(monkeypatch: pytest.MonkeyPatch, url: str) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("RUNNER", "external")
    monkeypatch.setenv("COUNTERSIGN_DEMO", "off")
    monkeypatch.delenv("COUNTERSIGN_AUTH", raising=False)
    try:
        yield
    finally:
        st.cache_resource.clear()
        cached = core.store.db._default.pop(normalise_url(url), None)
        if cached is not None:
            cached.dispose()


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[str]:
    """An in-process dashboard over an empty test database."""
    with _app_over(monkeypatch, sqlite_url):
        yield sqlite_url


@pytest.fixture(scope="session")
def demo_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four demo workflows, each run up to its first approval (built once)."""
    path = tmp_path_factory.mktemp("dashboard-demo") / "demo.db"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    load_demo(db)
    build_runner(db, runner_id="test-setup").run_until_idle(max_seconds=60)
    db.dispose()  # folds the WAL into the file
    return path


@pytest.fixture
def demo_db(monkeypatch: pytest.MonkeyPatch, demo_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A copy of the demo database, with the dashboard pointed at it."""
    path = tmp_path / "demo.db"
    shutil.copyfile(demo_template, path)
    url = f"sqlite:///{path}"
    with _app_over(monkeypatch, url):
        db = Database(url)
        yield db
        db.dispose()


@pytest.fixture
def at() -> AppTest:
    return new_app()


def run_runner(db: Database) -> None:
    build_runner(db, runner_id="test-runner").run_until_idle(max_seconds=60)


def table_with(at: AppTest, *columns: str) -> Any:
    """The one dataframe shown with these columns (dataframes without selection have no key)."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) == 1, f"{len(found)} tables with columns {columns}"
    return found[0]


def plotly_specs(at: AppTest) -> list[dict[str, Any]]:
    import json

    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
