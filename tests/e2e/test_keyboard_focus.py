"""The `e` key in a real browser focuses the answer form's first field as drawn: on a
budget-guarded charge_payment request that is the approved amount, not the call's
first Edit field (Currency)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from core.approvals.engine import ApprovalEngine
from tests.e2e.server import Dashboard, sign_in, wait_for_app

pytestmark = pytest.mark.browser

FINANCE = "finance@example.com"
ROW = '[class*="st-key-inbox-row-"]'
PAYMENT = "High-value payment"  # the demo's budget on charge_payment, asked of finance


def payment_id(app: Dashboard) -> str:
    db = app.database()
    try:
        [approval] = [
            a for a in ApprovalEngine(db).list_pending_approvals(requested_from=FINANCE) if a.title == PAYMENT
        ]
        return approval.id
    finally:
        db.dispose()


@pytest.mark.each_database
def test_e_from_the_inbox_focuses_the_approved_amount(dashboard: Dashboard, page: Any) -> None:
    approval_id = payment_id(dashboard)
    page.goto(f"{dashboard.url}/inbox")
    wait_for_app(page)
    sign_in(page, FINANCE)
    rows = page.locator(ROW)
    expect(rows.filter(has_text=PAYMENT)).to_be_visible()
    page.locator("h1").click()  # focus the page, not a field
    selected = page.locator(f'{ROW}[data-selected="true"]')
    page.keyboard.press("j")
    for _ in range(rows.count()):
        if PAYMENT in selected.inner_text():
            break
        page.keyboard.press("j")
    expect(selected).to_contain_text(PAYMENT)
    page.keyboard.press("e")
    expect(page).to_have_url(re.compile(rf"approval\?approval={approval_id}"))
    wait_for_app(page)
    expect(page.get_by_role("spinbutton", name="Approved amount (USD)")).to_be_focused()


def test_e_on_the_approval_page_focuses_the_approved_amount(dashboard: Dashboard, page: Any) -> None:
    approval_id = payment_id(dashboard)
    page.goto(f"{dashboard.url}/approval?approval={approval_id}")
    wait_for_app(page)
    sign_in(page, FINANCE)
    expect(page.get_by_role("button", name="Approve", exact=True)).to_be_visible()
    page.locator("h1").first.click()
    page.keyboard.press("e")
    expect(page.get_by_role("spinbutton", name="Approved amount (USD)")).to_be_focused()
