"""The Execution logs page in Chromium against `streamlit run app.py`: the
deferred CSV export arrives as a real download, and ``?session=<id>`` filters
the page to that session."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from playwright.sync_api import expect

from core.agents.execution_logs import CSV_COLUMNS, record
from tests.e2e.server import Dashboard, sign_in, wait_for_app

SESSION = "5e55e55e-0000-4000-8000-000000000003"


def test_download_the_csv_and_filter_by_a_session_in_the_url(dashboard: Dashboard, page: Any) -> None:
    db = dashboard.database()
    with db.session() as session:
        record(session, "agent_step", 'session turn: hello, "you"', session_id=SESSION, agent="helpdesk")
        record(
            session,
            "model_error",
            "RuntimeError: model server fell over",
            level="error",
            workflow_id="bbbbbbbb-0000-4000-8000-000000000002",
            agent="deployer",
        )
    db.dispose()

    page.goto(f"{dashboard.url}/logs")
    wait_for_app(page)
    sign_in(page, "admin@example.com")
    expect(page.get_by_text("matching rows")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == "execution-logs.csv"
    csv = pd.read_csv(io.StringIO(download.value.path().read_text(encoding="utf-8")), keep_default_na=False)
    assert list(csv.columns) == list(CSV_COLUMNS)
    assert set(csv["message"]) >= {'session turn: hello, "you"', "RuntimeError: model server fell over"}

    # A session id in the URL (as the Sessions page may link here) filters to its turns.
    page.goto(f"{dashboard.url}/logs?session={SESSION}")
    wait_for_app(page)
    expect(page.get_by_text("1 matching rows")).to_be_visible()
    expect(page.get_by_label("Session id")).to_have_value(SESSION)
