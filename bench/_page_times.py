"""Every dashboard page's render time on the demo data, against a bare Streamlit page.

Each page is one full AppTest script run through app.py, signed in as the
demo admin, on a SQLite copy of the demo (run to its first approvals); the
bare page (``st.title`` alone) is rendered alternately in the same run, so
the ratio says what our code costs on this machine whatever its speed. An
AppTest run is the server's work for a page (every query, every element);
the browser's drawing is not in it.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN = "admin@example.com"
AIM_SECONDS = 1.0
BARE = "import streamlit as st\nst.title('Bare page')\n"


def _renderer(db_url: str, page: str, params: dict[str, str]) -> Callable[[], None]:
    import streamlit.logger
    from streamlit.testing.v1 import AppTest

    from components.auth import SESSION_EMAIL

    streamlit.logger.set_log_level("error")  # AppTest's bare-mode warnings

    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    app.session_state[SESSION_EMAIL] = signed_token(db_url, ADMIN)
    os.environ["DATABASE_URL"] = db_url
    app.run()
    app.query_params.update(params)
    app.switch_page(f"pages/{page}.py")

    def render() -> None:
        os.environ["DATABASE_URL"] = db_url
        app.run()
        if app.exception:
            raise RuntimeError(f"pages/{page}.py failed: {app.exception[0].message}")
        if not app.title or any(t.value == "Countersign" for t in app.title):
            raise RuntimeError(f"pages/{page}.py was not drawn (signed out?): {[t.value for t in app.title]}")

    return render


def signed_token(db_url: str, email: str) -> str:
    """The session token the sign-in form would give ``email`` (a real signed one)."""
    from core.identity.users import get_user, session_token
    from core.store.db import Database

    db = Database(db_url)
    try:
        return session_token(get_user(db, email))
    finally:
        db.dispose()


def _bare() -> Callable[[], None]:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_string(BARE, default_timeout=60)

    def render() -> None:
        app.run()

    return render


def _median(call: Callable[[], Any], repeats: int, bare: Callable[[], Any]) -> tuple[float, float]:
    """(median seconds of ``call``, of the bare page), alternating the two."""
    call()
    bare()
    mine: list[float] = []
    base: list[float] = []
    for _ in range(repeats):
        for target, into in ((call, mine), (bare, base)):
            started = time.perf_counter()
            target()
            into.append(time.perf_counter() - started)
    return statistics.median(mine), statistics.median(base)


def demo_pages(db_url: str) -> list[tuple[str, dict[str, str]]]:
    """Every page, with the query a deep link gives it (a waiting request, its workflow)."""
    from core.approvals.engine import ApprovalEngine
    from core.store.db import Database

    db = Database(db_url)
    try:
        [approval, *_] = ApprovalEngine(db).list_pending_approvals(limit=1)
    finally:
        db.dispose()
    return [
        ("inbox", {}),
        ("approval", {"approval": approval.id}),
        ("workflows", {}),
        ("workflow", {"workflow": approval.workflow_id or ""}),
        ("monitor", {}),
        ("logs", {}),
        ("agents", {}),
        ("sessions", {}),
        ("settings", {}),
        ("tenants", {}),
    ]


def measure(db_url: str, repeats: int) -> bool:
    """Print each page's median render and its ratio to the bare page; True if all are
    under ``AIM_SECONDS``."""
    bare = _bare()
    print(f"  {'page (AppTest render, demo)':<30} {'median':>9} {'bare':>8} {'ratio':>7}")
    fine = True
    for page, params in demo_pages(db_url):
        took, base = _median(_renderer(db_url, page, params), repeats, bare)
        fine = fine and took < AIM_SECONDS
        mark = "" if took < AIM_SECONDS else f"  over {AIM_SECONDS:g}s"
        print(f"  {page:<30} {took * 1000:>7.0f}ms {base * 1000:>6.0f}ms {took / base:>6.1f}x{mark}")
    return fine
