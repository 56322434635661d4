"""The Monitor's approval analytics in Chromium against `streamlit run app.py`:
over a generated history, the plotly charts are drawn (time to decision by
type, channel and approver; rubber-stamping), and the CSV download holds the
figures core.ops.analytics computes. Saves docs/screenshots/monitor-analytics.png."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
from playwright.sync_api import expect

from core.ops.analytics import CSV_COLUMNS, approval_analytics
from core.store.tables import utcnow
from tests.e2e.server import Dashboard, sign_in, wait_for_app
from tests.helpers.approval_history import generate

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "monitor-analytics.png"
ADMIN = "admin@example.com"


def test_the_analytics_charts_and_their_csv(dashboard: Dashboard, page: Any) -> None:
    db = dashboard.database()
    generate(db, now=utcnow(), count=60)
    figures = approval_analytics(db, ADMIN)
    db.dispose()

    page.goto(f"{dashboard.url}/monitor")
    wait_for_app(page)
    sign_in(page, ADMIN)
    section = page.get_by_role("heading", name="Approval analytics (last 30 days)")
    expect(section).to_be_visible()
    for title in (
        "Time to decision by approval type",
        "Time to decision by channel",
        "Time to decision by approver",
        "Approved in under 5 s (rubber-stamping)",
    ):
        chart = page.locator(".js-plotly-plot").filter(has_text=title)
        expect(chart).to_have_count(1)
        expect(chart.locator("g.point").first).to_be_visible()  # bars drawn, not just a frame
    expect(page.get_by_text(f"{figures.expired_share:.0%}", exact=True).first).to_be_visible()

    page.set_viewport_size({"width": 1280, "height": 1250})  # the whole section in one shot
    section.evaluate("heading => heading.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)  # let the scroll settle before the shot
    page.screenshot(path=str(SCREENSHOT))

    with page.expect_download() as download:
        page.get_by_role("button", name="Download analytics CSV").click()
    assert download.value.suggested_filename == "approval-analytics.csv"
    table = pd.read_csv(io.StringIO(download.value.path().read_text(encoding="utf-8")), keep_default_na=False)
    assert list(table.columns) == CSV_COLUMNS
    by_type = table[(table["figure"] == "time_to_decision") & (table["by"] == "type")]
    assert sorted(by_type["key"]) == sorted(t.key for t in figures.times_by("type"))
    stamps = table[table["figure"] == "rubber_stamps"]
    assert dict(zip(stamps["key"], stamps["count"], strict=True)) == {
        s.approver: s.fast for s in figures.rubber_stamps
    }
