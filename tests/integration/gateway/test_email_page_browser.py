"""The email confirmation page in a real browser (Chromium, Playwright): what the
tool receives after an approver opens the link and answers.

The gateway is served on a loopback port over the test's database (SQLite and
PostgreSQL); the browser opens the link's page and clicks Approve, as an
approver would, with or without typing in the page's fields first. The
runner then runs the released call and ``send_note`` records what it
received, which must be exactly what the page showed and the approver left:

* untouched, a multi-line string comes back as it was (a browser submits a
  text area's line breaks as CRLF, and the HTML parser drops a newline right
  after ``<textarea>``): the request is approved, not modified;
* an edited text area gets the line endings the value had, and an integer
  typed with 20 digits arrives as that integer (not the float nearest it);
* "9,50" in a number field is refused with a sentence under the field, for an
  argument and for a budget's approved amount, as is a 401-digit number, and
  nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest
from tests.e2e.server import fresh_page
from tests.helpers.approved_calls import FINANCE, REQUESTER, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.reliability.browser_sites import gateway_site

NOTE = {
    "to": "bob@example.com",
    "message": "Hello bob,\nyour order shipped.\n",
    "footer": "\n\nDear bob",
    "account": 7,
}
ACCOUNT = "12345678901234567891"  # float() makes it 12345678901234567168


@pytest.fixture(autouse=True)
def link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "email-page-browser-link-secret")


@pytest.fixture
def gateway(db: Database) -> Iterator[str]:
    with gateway_site(db, approver_ui=False) as url:
        yield url


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    with fresh_page(chromium) as page:
        yield page


def note_registry(calls: Calls) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register("send_note")
    def send_note(
        to: str, message: str, idempotency_key: str, footer: str = "", account: int = 0
    ) -> dict[str, Any]:
        """Send a note (records what it received)."""
        calls.add("send_note", to=to, message=message, footer=footer, account=account)
        return {"sent": True}

    return reg


def waiting_note(db: Database, registry: ToolRegistry) -> ApprovalRequest:
    """A workflow whose guarded ``send_note`` call waits for finance: its request."""
    add_user(db, REQUESTER, role="service")
    step = {
        "name": "note",
        "type": "tool",
        "tool": "send_note",
        "requires_approval": True,
        "args": {name: f"${{input.{name}}}" for name in NOTE},
        "approval_config": {"type": "binary", "requested_from": FINANCE},
    }
    workflow_id = ops.create_workflow(
        db, {"name": "send a note", "steps": [step]}, input_data=NOTE, created_by=REQUESTER
    ).id
    run(db, registry)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    proposed = (approval.proposed_call or {})["arguments"]
    assert {name: proposed[name] for name in NOTE} == NOTE  # what the page starts from
    return approval


def open_link(page: Any, gateway: str, approval: ApprovalRequest) -> None:
    page.goto(f"{gateway}/email/confirm?token={make_link_token(approval.id, FINANCE, 'approve')}")
    page.get_by_role("button", name="Approve").wait_for()


def show_fields(page: Any) -> None:
    page.get_by_text("Change the call's arguments before approving").click()


def approve(page: Any) -> str:
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("heading", name="Thank you").wait_for()
    return str(page.text_content("body") or "")


def test_an_untouched_approve_releases_the_strings_exactly_as_they_were(
    db: Database, calls: Calls, gateway: str, browser_page: Any
) -> None:
    registry = note_registry(calls)
    approval = waiting_note(db, registry)
    open_link(browser_page, gateway, approval)
    # The page shows the value itself, its first newline included.
    assert browser_page.input_value("textarea[name='arg.footer']") == NOTE["footer"]
    assert browser_page.input_value("textarea[name='arg.message']") == NOTE["message"]
    thanks = approve(browser_page)
    assert "with changes" not in thanks
    assert ApprovalEngine(db).get(approval.id).status == "approved"
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.decision, vote.data, vote.channel) == ("approve", {}, "email")
    run(db, registry)
    assert calls.of("send_note") == [NOTE]


def test_an_edited_text_area_and_a_long_integer_arrive_as_typed(
    db: Database, calls: Calls, gateway: str, browser_page: Any
) -> None:
    registry = note_registry(calls)
    approval = waiting_note(db, registry)
    open_link(browser_page, gateway, approval)
    show_fields(browser_page)
    browser_page.fill("textarea[name='arg.message']", "Hello bob,\nyour order is late.\n")
    browser_page.fill("input[name='arg.account']", ACCOUNT)
    thanks = approve(browser_page)
    assert "with changes" in thanks
    assert ApprovalEngine(db).get(approval.id).status == "modified"
    run(db, registry)
    assert calls.of("send_note") == [
        {**NOTE, "message": "Hello bob,\nyour order is late.\n", "account": int(ACCOUNT)}
    ]
    [received] = calls.of("send_note")
    assert type(received["account"]) is int


def test_a_decimal_comma_is_refused_under_its_field_and_nothing_is_recorded(
    db: Database, calls: Calls, gateway: str, browser_page: Any
) -> None:
    registry = note_registry(calls)
    approval = waiting_note(db, registry)
    open_link(browser_page, gateway, approval)
    show_fields(browser_page)
    browser_page.fill("input[name='arg.account']", "1,5")
    browser_page.get_by_role("button", name="Approve").click()
    browser_page.get_by_text("1,5 is ambiguous: write 1.5 (a point for decimals)").wait_for()
    assert browser_page.input_value("input[name='arg.account']") == "1,5"  # what was typed, kept
    assert ApprovalEngine(db).responses(approval.id) == []
    # Nor is a number no call can carry an error page: a sentence under the field.
    browser_page.fill("input[name='arg.account']", "9" * 401)
    browser_page.get_by_role("button", name="Approve").click()
    browser_page.get_by_text("is too long: a number has at most 100 digits").wait_for()
    assert ApprovalEngine(db).responses(approval.id) == []

    pay = pay_registry(calls)
    _, budget = waiting(db, pay, "budget", amount=1000)
    open_link(browser_page, gateway, budget)
    browser_page.fill("input[name='approved_amount']", "9,50")
    browser_page.get_by_role("button", name="Approve").click()
    browser_page.locator(".field-error").get_by_text(
        "9,50 is ambiguous: write 9.50 (a point for decimals)"
    ).wait_for()
    assert ApprovalEngine(db).get(budget.id).status == "pending"
    assert ApprovalEngine(db).responses(budget.id) == []
    run(db, pay)
    run(db, registry)
    assert calls.of("pay") == [] and calls.of("send_note") == []
