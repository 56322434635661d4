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


def test_a_filter_typed_then_download_clicked_at_once_exports_what_the_table_shows(
    dashboard: Dashboard, page: Any
) -> None:
    """The filters are one form: a value typed but not applied changes neither the table
    nor the export, so clicking Download CSV straight from the text box (at machine and
    at human speed) exports the rows on screen; after Apply, the new ones. Each click's
    download arrives (the button's click does not rerun the page, which would leave a
    click that arrives after that rerun with a file id the server has forgotten)."""
    db = dashboard.database()
    with db.session() as session:
        for number in range(30):
            record(session, "agent_step", f"turn {number}", agent="helpdesk")
    db.dispose()
    page.goto(f"{dashboard.url}/logs")
    wait_for_app(page)
    sign_in(page, "admin@example.com")
    expect(page.get_by_text("matching rows")).to_be_visible()
    shown = int(page.get_by_text("matching rows").inner_text().split()[0])
    assert shown >= 30
    download = page.get_by_role("button", name="Download CSV")
    text = page.get_by_label("Message contains")

    def exported_messages() -> list[str]:
        with page.expect_download(timeout=15_000) as done:
            download.click()
        csv = pd.read_csv(io.StringIO(done.value.path().read_text(encoding="utf-8")), keep_default_na=False)
        return list(csv["message"])

    def on_screen() -> int:
        """The row count the page shows once it has settled after the click."""
        page.wait_for_timeout(1_500)
        wait_for_app(page)
        return int(page.get_by_text("matching rows").inner_text().split()[0])

    text.fill("turn 2")  # machine speed, not applied
    assert len(exported_messages()) == on_screen() == shown
    text.fill("")
    text.press_sequentially("turn 2", delay=60)  # human speed, not applied
    page.wait_for_timeout(300)
    assert len(exported_messages()) == on_screen() == shown

    text.press("Enter")  # applied
    expect(page.get_by_text("11 matching rows")).to_be_visible()
    for _ in range(3):  # again and again: every click's download arrives
        messages = exported_messages()
        assert sorted(messages) == sorted(["turn 2", *(f"turn {n}" for n in range(20, 30))])
