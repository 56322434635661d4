"""After a decision, in Chromium against `streamlit run app.py`: the Approval page says
where the workflow goes next, with a link to it; an ordinary rejection reads as a
person's decision (warnings, no error) on the Approval, Workflow and Monitor pages;
the Workflows list links to the request a waiting workflow waits for."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.ops.alerts import evaluate_alerts
from core.runtime import build_runner
from tests.e2e.server import Dashboard, fresh_page, sign_in, wait_for_app

pytestmark = pytest.mark.browser

FINANCE = "finance@example.com"
ALERT = '[data-testid="stAlertContainer"]'
ROW = '[class*="st-key-inbox-row-"]'
WAIT_S = 30.0


def _ask(title: str) -> dict[str, Any]:
    return {
        "type": "approval",
        "approval_config": {"title": title, "type": "binary", "requested_from": FINANCE, "channels": []},
    }


def start_refund(app: Dashboard, name: str, title: str = "Refund?") -> tuple[str, str]:
    """A workflow asking finance, then asking again at step 'ship', run to its first
    request (the dashboard's own runner starts with its first visitor); (workflow id,
    that request's id)."""
    db = app.database()
    try:
        definition = {
            "name": name,
            "steps": [{"name": "ask", **_ask(title)}, {"name": "ship", **_ask("Ship?")}],
        }
        workflow = ops.create_workflow(db, definition, created_by="admin@example.com")
        build_runner(db, runner_id="test-setup").run_until_idle(max_seconds=WAIT_S)
        [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow.id)
        return workflow.id, approval.id
    finally:
        db.dispose()


def wait_for_status(app: Dashboard, workflow_id: str, status: str) -> None:
    db = app.database()
    try:
        deadline = time.monotonic() + WAIT_S
        while ops.get_workflow(db, workflow_id).status != status:
            assert time.monotonic() < deadline, ops.get_workflow(db, workflow_id).status
            time.sleep(0.2)
    finally:
        db.dispose()


def alerts(page: Any) -> list[tuple[str, str]]:
    """Each alert box on the page: (its kind, its words as read, without its icon's name),
    e.g. ("Warning", "...")."""
    return [
        (kind.removeprefix("stAlertContent"), text.replace("\u2060", "").strip())
        for kind, text in page.locator(ALERT).evaluate_all(
            """boxes => boxes.map(box => [
                box.querySelector('[data-testid^="stAlertContent"]')?.getAttribute('data-testid') || '',
                box.querySelector('[data-testid="stMarkdownContainer"]')?.innerText || ''])"""
        )
    ]


def open_as(app: Dashboard, page: Any, email: str, path: str) -> None:
    page.goto(f"{app.url}/{path}")
    wait_for_app(page)
    sign_in(page, email)


@pytest.mark.each_database
def test_an_approval_says_which_step_comes_next_and_links_to_the_workflow(
    dashboard: Dashboard, page: Any
) -> None:
    workflow_id, approval_id = start_refund(dashboard, "Refund ORD-7")
    open_as(dashboard, page, FINANCE, f"approval?approval={approval_id}")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_text("You approved the request.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^The workflow resumes at step 'ship'"))).to_be_visible()
    assert [kind for kind, _ in alerts(page) if kind == "Error"] == []
    page.get_by_role("link", name="Open the workflow").click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Refund ORD-7")).to_be_visible()
    assert page.url.endswith(f"/workflow?workflow={workflow_id}")


@pytest.mark.each_database
def test_a_rejection_reads_as_a_persons_decision_not_a_failure(
    dashboard: Dashboard, page: Any, chromium: Any
) -> None:
    workflow_id, approval_id = start_refund(dashboard, "Refund ORD-9")
    open_as(dashboard, page, FINANCE, f"approval?approval={approval_id}")
    page.get_by_role("textbox", name="Comment").fill("Duplicate of ORD-8")
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page.get_by_text("You rejected the request.")).to_be_visible()
    stopped = "The workflow has stopped at step 'ask': the request was rejected."
    expect(page.get_by_text(stopped)).to_be_visible()
    shown = alerts(page)
    assert ("Warning", stopped) in shown, shown
    assert any(kind == "Warning" and text.startswith("This request was rejected by") for kind, text in shown)
    assert [text for kind, text in shown if kind == "Error"] == []

    page.get_by_role("link", name="Open the workflow").click()
    expect(page.get_by_role("heading", name="Refund ORD-9")).to_be_visible()
    wait_for_status(dashboard, workflow_id, "failed")  # the engine's status stays as it was
    page.reload()  # drawn again once the dashboard's runner has applied the rejection
    wait_for_app(page)
    expect(page.get_by_text("Stopped: the request at step 'ask' was rejected by")).to_be_visible()
    shown = alerts(page)
    assert (
        "Warning",
        f"Stopped: the request at step 'ask' was rejected by {FINANCE}: Duplicate of ORD-8",
    ) in shown
    assert [text for kind, text in shown if kind == "Error"] == []
    page.get_by_role("link", name="Open the rejected request").click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Refund?")).to_be_visible()

    db = dashboard.database()
    try:
        evaluate_alerts(db)
    finally:
        db.dispose()
    with fresh_page(chromium) as admin:
        open_as(dashboard, admin, "admin@example.com", "monitor")
        card = admin.locator('[class*="st-key-alerts-open-"]').filter(has_text="Refund ORD-9")
        expect(card).to_be_visible()
        expect(card.get_by_text("Workflow stopped: request rejected")).to_be_visible()
        expect(card.get_by_text("Workflow failed")).to_have_count(0)
        expect(card.get_by_text("warning", exact=True)).to_be_visible()


def test_the_workflows_list_links_to_the_request_a_workflow_waits_for(
    dashboard: Dashboard, page: Any
) -> None:
    db = dashboard.database()
    try:
        [waiting] = [
            a for a in ApprovalEngine(db).list_pending_approvals() if a.title == "Production deploy approval"
        ]
    finally:
        db.dispose()
    open_as(dashboard, page, "admin@example.com", "workflows")
    grid = page.locator('[data-testid="stDataFrame"]').first
    # The grid is a canvas: click the workflow's row, move to its "request" cell (two to
    # the right of the name) and open it with Enter, which shows the cell's link.
    name = grid.locator('td[role="gridcell"]').filter(has_text="Production deployment")
    row = int((name.get_attribute("id") or "").rsplit("-", 1)[1])
    box = grid.locator("canvas").first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 100, box["y"] + 35 * (row + 1) + 17)
    expect(name).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name="Open the request")
    expect(link).to_have_attribute("href", f"approval?approval={waiting.id}")
    with page.context.expect_page() as opened:
        link.click()
    request = opened.value
    wait_for_app(request)
    expect(request.get_by_role("heading", name="Production deploy approval")).to_be_visible()
    assert request.url.endswith(f"/approval?approval={waiting.id}")


@pytest.mark.each_database
def test_a_bulk_rejection_says_where_each_workflow_went(dashboard: Dashboard, page: Any) -> None:
    for name in ("A", "B"):
        start_refund(dashboard, f"Refund {name}", f"Refund {name}?")
    open_as(dashboard, page, FINANCE, "inbox")
    for name in ("A", "B"):
        page.locator(ROW).filter(has_text=f"Refund {name}?").locator('input[type="checkbox"]').check(
            force=True
        )
    page.get_by_role("button", name="Reject selected").click()
    expect(page.get_by_text("You rejected 2 of 2 selected requests.")).to_be_visible()
    [(kind, text)] = [(k, t) for k, t in alerts(page) if "selected requests" in t]
    for name in ("A", "B"):
        assert f"Refund {name}?: The workflow has stopped at step 'ask': the request was rejected." in text
