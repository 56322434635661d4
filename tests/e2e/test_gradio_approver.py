"""The Gradio approver at /approve in Chromium: the proposed action as a readable
table (no JSON string), three distinct buttons, and a count that follows requests
made and answered elsewhere while the page stays open."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from core.approvals.engine import ApprovalEngine
from core.identity.users import add_user
from core.store.db import Database
from gateway.approver_ui import REFRESH_SECONDS
from tests.e2e.server import REPO_ROOT, UI_TIMEOUT_MS, VIEWPORT
from tests.reliability.browser_sites import gateway_site

pytestmark = pytest.mark.browser

ANN = "ann@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def approver_page(sqlite_db: Database, chromium: Any) -> Iterator[tuple[Any, str]]:
    # The session's browser (tests/e2e/conftest.py): one Playwright per process.
    add_user(sqlite_db, ANN, password=PASSWORD)
    with gateway_site(sqlite_db) as gateway:
        context = chromium.new_context(viewport=VIEWPORT)
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"{gateway}/login?next=/approve/")
        page.fill("#email", ANN)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/approve/.*"))
        try:
            yield page, gateway
        finally:
            context.close()


def ask(db: Database, title: str, action: dict[str, Any] | None = None) -> str:
    return (
        ApprovalEngine(db)
        .request_approval(
            None,
            title,
            requested_from=ANN,
            requested_by="agent@example.com",
            config={"channels": []},
            proposed_action=action,
        )
        .id
    )


def test_the_gradio_approver_reads_and_counts(sqlite_db: Database, approver_page: tuple[Any, str]) -> None:
    page, _ = approver_page
    first = ask(sqlite_db, "Send the newsletter", {"step": "send", "tool": "send_email", "recipients": 1200})
    who = page.locator("#cs-who")
    # Made after the page loaded: the count follows within a few seconds, no reload.
    expect(who).to_contain_text("1 waiting", timeout=(REFRESH_SECONDS + 10) * 1000)
    page.locator("#cs-choice input").click()
    page.get_by_role("option", name=re.compile(first[:8])).click()
    details = page.locator("#cs-details")
    table = details.locator("table")
    expect(table).to_contain_text("send_email")
    expect(table.locator("tr").filter(has_text="recipients")).to_contain_text("1200")
    assert "&quot;" not in (details.text_content() or "")
    assert "{" not in (details.text_content() or "")
    # Three buttons that look different: primary, secondary, stop.
    classes = [
        page.locator(f"#cs-{name}").get_attribute("class") or "" for name in ("approve", "modify", "reject")
    ]
    assert "primary" in classes[0] and "secondary" in classes[1] and "stop" in classes[2], classes
    if os.environ.get("COUNTERSIGN_SCREENSHOTS"):
        page.screenshot(path=str(REPO_ROOT / "docs" / "screenshots" / "gradio-approver.png"))
    ask(sqlite_db, "Rotate the keys")
    expect(who).to_contain_text("2 waiting", timeout=(REFRESH_SECONDS + 10) * 1000)
    page.locator("#cs-approve").click()
    expect(page.locator("#cs-result")).to_contain_text("Recorded")
    expect(who).to_contain_text("1 waiting")
    assert ApprovalEngine(sqlite_db).get(first).status == "approved"
