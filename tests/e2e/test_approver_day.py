"""The approver's day in a real browser: a live inbox, decisions made elsewhere,
the admin's views, reassignment, bulk decisions and the keyboard.

Requests are made while the page is open, by the CLI (a subprocess starting a
workflow the dashboard's own runner runs to its approval) or by core; the
page must show them without a reload (a marker set on ``window`` before
survives only if the document was not reloaded).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from components.inbox_live import REFRESH_SECONDS
from core.approvals.engine import ApprovalEngine
from core.store.tables import ApprovalRequest, WorkflowEvent
from tests.e2e.server import REPO_ROOT, Dashboard, sign_in, wait_for_app

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
FINANCE = "finance@example.com"
ROW = '[class*="st-key-inbox-row-"]'


def shot(page: Any, name: str) -> None:
    """Refresh a README screenshot when asked (COUNTERSIGN_SCREENSHOTS=1)."""
    if os.environ.get("COUNTERSIGN_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOTS / name))


def mark_document(page: Any) -> None:
    page.evaluate("window.__stillTheSameDocument = true")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__stillTheSameDocument === true"), "the page was reloaded"


def ask(app: Dashboard, title: str, who: str = FINANCE, kind: str = "binary") -> str:
    db = app.database()
    try:
        return (
            ApprovalEngine(db)
            .request_approval(
                None,
                title,
                approval_type=kind,
                requested_from=who,
                requested_by="agent@example.com",
                config={"channels": []},
            )
            .id
        )
    finally:
        db.dispose()


def row_of(app: Dashboard, approval_id: str) -> ApprovalRequest:
    db = app.database()
    try:
        with db.read() as session:
            row = session.get(ApprovalRequest, approval_id)
            assert row is not None
            return row
    finally:
        db.dispose()


def open_inbox(app: Dashboard, page: Any, email: str) -> None:
    page.goto(f"{app.url}/inbox")
    wait_for_app(page)
    sign_in(page, email)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


@pytest.mark.each_database
def test_a_request_started_by_the_cli_appears_without_reload(
    dashboard: Dashboard, page: Any, tmp_path: Path
) -> None:
    open_inbox(dashboard, page, FINANCE)
    before = page.locator(ROW).count()
    expect(page).to_have_title(re.compile(rf"^\({before}\) Inbox"))
    mark_document(page)
    definition = tmp_path / "refund.json"
    definition.write_text(
        json.dumps(
            {
                "name": "Refund",
                "steps": [
                    {
                        "name": "ask",
                        "type": "approval",
                        "approval_config": {
                            "title": "Refund order ORD-88",
                            "type": "binary",
                            "requested_from": FINANCE,
                            "channels": [],
                        },
                    }
                ],
            }
        )
    )
    started = subprocess.run(
        [sys.executable, "-m", "core", "workflow", "start", str(definition), "--as", "admin@example.com"],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": dashboard.db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    # The dashboard's runner opens the request; the inbox redraws by itself.
    expect(page.locator(ROW).filter(has_text="Refund order ORD-88")).to_be_visible()
    expect(page.get_by_text("New request: Refund order ORD-88")).to_be_visible()
    expect(page).to_have_title(re.compile(rf"^\({before + 1}\) Inbox"))
    assert_not_reloaded(page)
    shot(page, "inbox-live.png")


@pytest.mark.each_database
def test_an_open_approval_page_shows_a_decision_made_elsewhere(dashboard: Dashboard, page: Any) -> None:
    approval_id = ask(dashboard, "Pay the printer")
    open_inbox(dashboard, page, FINANCE)
    page.goto(f"{dashboard.url}/approval?approval={approval_id}")
    wait_for_app(page)
    expect(page.get_by_role("button", name="Approve", exact=True)).to_be_visible()
    mark_document(page)
    db = dashboard.database()
    try:  # finance answers elsewhere (another tab, the API) while this page stays open
        ApprovalEngine(db).respond_to_approval(
            approval_id, FINANCE, "reject", comment="not this month", channel="api"
        )
    finally:
        db.dispose()
    expect(page.get_by_text(re.compile("This request was rejected"))).to_be_visible(timeout=15_000)
    expect(page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    assert_not_reloaded(page)


def test_admin_views_search_sort_and_reassign(dashboard: Dashboard, page: Any) -> None:
    open_inbox(dashboard, page, "admin@example.com")
    page.locator(".st-key-inbox-view").get_by_text(re.compile(r"^All pending \(\d+\)")).click()
    wait_for_app(page)
    pending = page.locator(ROW)
    db = dashboard.database()
    try:
        total = len(ApprovalEngine(db).list_pending_approvals())
    finally:
        db.dispose()
    assert total >= 4, total  # the demo's requests, none of them the admin's own
    expect(pending).to_have_count(total)  # once the view has redrawn
    # Every request is listed, but the admin ticks only what they may answer themselves.
    expect(pending.locator('input[type="checkbox"]')).to_have_count(0)
    shot(page, "inbox-all-pending.png")
    search = page.get_by_role("textbox", name="Search")
    search.fill("deploy")
    search.press("Enter")
    expect(pending).to_have_count(1)
    expect(pending.first).to_contain_text("Production deploy approval")
    search.fill("")
    search.press("Enter")
    expect(pending).to_have_count(total)
    # Reassign the deploy request to legal, from its page.
    pending.filter(has_text="Production deploy approval").get_by_role("link").click()
    wait_for_app(page)
    page.get_by_text("Reassign this request").click()
    page.get_by_role("textbox", name="New approvers").fill("legal@example.com")
    page.get_by_role("textbox", name="Reason").fill("devops is on leave")
    page.get_by_role("button", name="Reassign", exact=True).click()
    expect(page.get_by_text("Reassigned to legal@example.com.")).to_be_visible()
    db = dashboard.database()
    try:
        with db.read() as session:
            event = session.scalars(
                select(WorkflowEvent).where(WorkflowEvent.event_type == "approval.reassigned")
            ).one()
            assert event.actor == "admin@example.com"
            assert event.after == {"approvers": ["legal@example.com"]}
            assert event.data["reason"] == "devops is on leave"
    finally:
        db.dispose()


@pytest.mark.each_database
def test_bulk_approve_with_one_comment(dashboard: Dashboard, page: Any) -> None:
    first = ask(dashboard, "Bulk one")
    second = ask(dashboard, "Bulk two")
    untouched = ask(dashboard, "Bulk three")
    open_inbox(dashboard, page, FINANCE)
    for title in ("Bulk one", "Bulk two"):
        page.locator(ROW).filter(has_text=title).locator('input[type="checkbox"]').check(force=True)
    page.get_by_role("textbox", name="Comment for all of them").fill("month-end batch")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.get_by_text("You approved 2 of 2 selected requests.")).to_be_visible()
    # The live list redraws every few seconds; the outcome outlives a redraw.
    page.wait_for_timeout((REFRESH_SECONDS + 1) * 1000)
    expect(page.get_by_text("You approved 2 of 2 selected requests.")).to_be_visible()
    for approval_id in (first, second):
        row = row_of(dashboard, approval_id)
        assert row.status == "approved", row.status
    assert row_of(dashboard, untouched).status == "pending"
    db = dashboard.database()
    try:
        votes = ApprovalEngine(db).responses(first)
        assert [(v.decision, v.comment, v.channel) for v in votes] == [
            ("approve", "month-end batch", "dashboard")
        ]
    finally:
        db.dispose()
    expect(page.locator(ROW).filter(has_text="Bulk one")).to_have_count(0)


@pytest.mark.each_database
def test_keyboard_moves_opens_approves_and_lists_keys(dashboard: Dashboard, page: Any) -> None:
    approval_id = ask(dashboard, "Keyboard request")
    open_inbox(dashboard, page, FINANCE)
    rows = page.locator(ROW)
    expect(rows.filter(has_text="Keyboard request")).to_be_visible()
    page.locator("h1").click()  # focus the page, not a field
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    shot(page, "keyboard.png")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    # j selects the first row and moves down; k moves up.
    selected = page.locator(f'{ROW}[data-selected="true"]')
    page.keyboard.press("j")
    expect(selected).to_have_count(1)
    titles = [rows.nth(i).inner_text() for i in range(rows.count())]
    index = next(i for i, text in enumerate(titles) if "Keyboard request" in text)
    assert index > 0, titles  # the demo's requests with a deadline come first
    for _ in range(index):
        page.keyboard.press("j")
    expect(selected).to_contain_text("Keyboard request")
    page.keyboard.press("k")
    expect(selected).not_to_contain_text("Keyboard request")
    page.keyboard.press("j")
    expect(selected).to_contain_text("Keyboard request")
    # x ticks the selected request for a bulk decision, and x again unticks it.
    tick = selected.locator('input[type="checkbox"]')
    page.keyboard.press("x")
    expect(tick).to_be_checked()
    page.keyboard.press("x")
    expect(tick).not_to_be_checked()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"approval\?approval={approval_id}"))
    wait_for_app(page)
    expect(page.get_by_role("button", name="Approve", exact=True)).to_be_visible()
    page.locator("h1").first.click()
    page.keyboard.press("e")  # no answer or call fields on a yes/no request: the comment
    expect(page.get_by_role("textbox", name="Comment")).to_be_focused()
    page.locator("h1").first.click()
    page.keyboard.press("a")
    expect(page.get_by_text("You approved the request.")).to_be_visible()
    deadline = time.monotonic() + 10
    while row_of(dashboard, approval_id).status != "approved" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert row_of(dashboard, approval_id).status == "approved"


def test_the_inbox_has_its_own_path(dashboard: Dashboard, page: Any) -> None:
    page.goto(f"{dashboard.url}/inbox")  # signed out: the sign-in form, then the Inbox
    wait_for_app(page)
    sign_in(page, FINANCE)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    page.goto(f"{dashboard.url}/inbox")  # signed in (the session cookie), typed by hand
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
    assert page.url.endswith("/inbox")
    page.goto(dashboard.url)  # the root opens the Inbox
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def test_r_rejects_the_open_request(dashboard: Dashboard, page: Any) -> None:
    approval_id = ask(dashboard, "Reject me by key")
    open_inbox(dashboard, page, FINANCE)
    page.goto(f"{dashboard.url}/approval?approval={approval_id}")
    wait_for_app(page)
    expect(page.get_by_role("button", name="Reject", exact=True)).to_be_visible()
    page.locator("h1").first.click()
    page.keyboard.press("r")
    expect(page.get_by_text("You rejected the request.")).to_be_visible()
    assert row_of(dashboard, approval_id).status == "rejected"


@pytest.mark.each_database
@pytest.mark.parametrize("speed", ["human", "machine"])
def test_a_comment_typed_and_approved_at_once_is_recorded_with_the_decision(
    dashboard: Dashboard, page: Any, speed: str
) -> None:
    """The first click on Approve right after typing a comment decides: the comment is
    inside the decision's form, so no rerun on leaving the box swallows the click."""
    approval_id = ask(dashboard, "Approve with a note")
    open_inbox(dashboard, page, FINANCE)
    page.goto(f"{dashboard.url}/approval?approval={approval_id}")
    wait_for_app(page)
    comment = page.get_by_role("textbox", name="Comment")
    note = "paid from the Q3 budget"
    if speed == "human":
        comment.click()
        page.keyboard.type(note, delay=90)
    else:
        comment.fill(note)
    page.get_by_role("button", name="Approve", exact=True).click()  # at once, once
    expect(page.get_by_text("You approved the request.")).to_be_visible()
    db = dashboard.database()
    try:
        engine = ApprovalEngine(db)
        assert engine.get(approval_id).status == "approved"
        votes = [(v.approver, v.decision, v.comment, v.channel) for v in engine.responses(approval_id)]
    finally:
        db.dispose()
    assert votes == [(FINANCE, "approve", note, "dashboard")]
