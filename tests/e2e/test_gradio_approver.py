"""The Gradio approver at /approve in Chromium: the proposed action as a readable
table (no JSON string), three distinct buttons, and a count that follows requests
made and answered elsewhere while the page stays open."""

from __future__ import annotations

import contextlib
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
from tests.helpers.approved_calls import (
    FINANCE,
    PROPOSED,
    pay_registry,
    released,
    run,
    waiting,
)
from tests.helpers.engine import Calls
from tests.reliability.browser_sites import gateway_site

pytestmark = pytest.mark.browser

ANN = "ann@example.com"
PASSWORD = "correct horse battery"


@contextlib.contextmanager
def signed_in(chromium: Any, gateway: str, email: str) -> Iterator[Any]:
    """A page of a new browser context, signed in as ``email`` and on /approve."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{gateway}/login?next=/approve/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/approve/.*"))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def approver_page(sqlite_db: Database, chromium: Any) -> Iterator[tuple[Any, str]]:
    # The session's browser (tests/e2e/conftest.py): one Playwright per process.
    add_user(sqlite_db, ANN, password=PASSWORD)
    with gateway_site(sqlite_db) as gateway, signed_in(chromium, gateway, ANN) as page:
        yield page, gateway


def drawn_for(page: Any, approval_id: str) -> Any:
    """The page once the answer form is drawn for ``approval_id`` (a click on an earlier
    drawing's buttons is refused as not ready, and says so)."""
    page.locator(f".cs-form-for-{approval_id}").first.wait_for(state="attached")
    return page


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
    # Buttons that look different: primary, stop; nothing to change on a yes/no request
    # guarding no call, so no "Approve with changes" (as on the dashboard).
    classes = [page.locator(f"#cs-{name}").get_attribute("class") or "" for name in ("approve", "reject")]
    assert "primary" in classes[0] and "stop" in classes[1], classes
    expect(page.locator("#cs-modify")).to_be_hidden()
    if os.environ.get("COUNTERSIGN_SCREENSHOTS"):
        page.screenshot(path=str(REPO_ROOT / "docs" / "screenshots" / "gradio-approver.png"))
    ask(sqlite_db, "Rotate the keys")
    expect(who).to_contain_text("2 waiting", timeout=(REFRESH_SECONDS + 10) * 1000)
    drawn_for(page, first).locator("#cs-approve").click()
    expect(page.locator("#cs-result")).to_contain_text("Recorded")
    expect(who).to_contain_text("1 waiting")
    assert ApprovalEngine(sqlite_db).get(first).status == "approved"


DEPLOY_FORM = {
    "type": "object",
    "required": ["environment", "replicas"],
    "properties": {
        "environment": {"enum": ["staging", "production"], "default": "staging"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
        "notes": {"type": "string"},
        "confirm": {"type": "boolean", "title": "Confirmed with the on-call"},
    },
}


def open_form_request(page: Any, db: Database, title: str) -> str:
    """A deploy form request for ANN, chosen on the open page; its id."""
    approval_id = (
        ApprovalEngine(db)
        .request_approval(
            None,
            title,
            approval_type="form",
            requested_from=ANN,
            requested_by="agent@example.com",
            config={"channels": [], "schema": DEPLOY_FORM},
        )
        .id
    )
    page.locator("#cs-refresh").click()
    page.locator("#cs-choice input").click()
    page.get_by_role("option", name=re.compile(approval_id[:8])).click()
    return approval_id


def test_the_answer_form_is_drawn_from_the_schema(
    sqlite_db: Database, approver_page: tuple[Any, str]
) -> None:
    page, _ = approver_page
    approval_id = open_form_request(page, sqlite_db, "Deploy the release")
    # One widget per property, no JSON to type.
    expect(page.locator("#cs-field-environment")).to_be_visible()
    expect(page.locator("#cs-field-replicas input[type=number]")).to_have_value("2")
    expect(page.locator("#cs-answer")).to_have_count(0)
    # Nothing to edit but the answer: no call, no budget.
    expect(page.locator("#cs-arguments")).to_be_hidden()
    expect(page.get_by_label(re.compile("Approved amount"))).to_have_count(0)
    # A form's answer may differ from its defaults: the third button, in its own look.
    modify = drawn_for(page, approval_id).locator("#cs-modify")
    assert "secondary" in (modify.get_attribute("class") or "")
    page.locator("#cs-field-environment input").click()
    page.get_by_role("option", name="production").click()
    page.locator("#cs-field-replicas input[type=number]").fill("4")
    page.locator("#cs-field-confirm input[type=checkbox]").check()
    # Typed and clicked at once: what was typed is what is recorded.
    page.locator("#cs-field-notes textarea").fill("after the freeze")
    if os.environ.get("COUNTERSIGN_SCREENSHOTS"):
        page.screenshot(
            path=str(REPO_ROOT / "docs" / "screenshots" / "gradio-answer-form.png"), full_page=True
        )
    drawn_for(page, approval_id).locator("#cs-approve").click()
    expect(page.locator("#cs-result")).to_contain_text("Recorded")
    approval = ApprovalEngine(sqlite_db).get(approval_id)
    assert approval.status == "approved"
    assert approval.decision_data == {
        "environment": "production",
        "replicas": 4,
        "notes": "after the freeze",
        "confirm": True,
    }


def test_an_answer_outside_the_schema_is_refused_in_words(
    sqlite_db: Database, approver_page: tuple[Any, str]
) -> None:
    page, _ = approver_page
    approval_id = open_form_request(page, sqlite_db, "Deploy again")
    page.locator("#cs-field-replicas input[type=number]").fill("40")
    drawn_for(page, approval_id).locator("#cs-approve").click()
    expect(page.locator("#cs-result")).to_contain_text("Refused")
    # Named by the field's title, as on the dashboard.
    expect(page.locator("#cs-result")).to_contain_text("Replicas: 40 is greater than the maximum of 10")
    assert ApprovalEngine(sqlite_db).get(approval_id).status == "pending"


@pytest.mark.parametrize("speed", ["human", "machine"])
def test_a_budget_approved_lower_in_the_browser_runs_the_tool_with_the_lower_amount(
    sqlite_db: Database, approver_page: tuple[Any, str], chromium: Any, speed: str
) -> None:
    """What the tool received, through the Gradio page in Chromium: the lower amount."""
    _, gateway = approver_page
    calls = Calls()
    registry = pay_registry(calls)
    add_user(sqlite_db, FINANCE, password=PASSWORD)
    _, approval = waiting(sqlite_db, registry, "budget")
    with signed_in(chromium, gateway, FINANCE) as page:
        page.locator("#cs-choice input").click()
        page.get_by_role("option", name=re.compile(approval.id[:8])).click()
        amount = page.locator("#cs-field-approved_amount input")  # the one amount field
        expect(amount).to_have_value("12500")
        expect(page.locator("#cs-arguments")).to_be_visible()  # a guarded call: its editor
        expect(page.locator("#cs-allow-row")).to_be_hidden()  # an approver makes no rules
        if speed == "human":
            amount.click()
            page.keyboard.press("ControlOrMeta+a")
            page.keyboard.type("9000", delay=120)
        else:
            amount.fill("9000")
        drawn_for(page, approval.id).locator("#cs-approve").click()
        expect(page.locator("#cs-result")).to_contain_text("Recorded")
    run(sqlite_db, registry)
    assert calls.of("pay") == [{**PROPOSED, "amount": 9000}]


ROTATION_FORM = {
    "type": "object",
    "required": ["keys"],
    "properties": {"keys": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1}},
}


def test_a_click_racing_the_next_form_is_not_sent_with_the_old_fields(
    sqlite_db: Database, approver_page: tuple[Any, str]
) -> None:
    """Approve clicked on one request's form while the page draws another's: the click
    carries which request its fields were drawn for, and the server refuses to read
    them against another request's schema ("Not sent"), deciding nothing. Tried until
    the race is hit (the click usually beats the drawing); each try must be safe, and
    say so in words (never Gradio's bare "Error")."""
    page, _ = approver_page
    deploy = open_form_request(page, sqlite_db, "Deploy the release")
    expect(page.locator("#cs-field-replicas input[type=number]")).to_have_value("2")
    page.locator("#cs-field-replicas input[type=number]").fill("7")
    engine = ApprovalEngine(sqlite_db)
    refused = 0
    for attempt in range(5):
        rotation = engine.request_approval(
            None,
            f"Rotate the keys ({attempt})",
            approval_type="form",
            requested_from=ANN,
            requested_by="agent@example.com",
            config={"channels": [], "schema": ROTATION_FORM},
        ).id
        # The list picks the new request up by itself, keeping the deploy form drawn
        # (Refresh would clear the choice, and so the drawing, first).
        waiting_now = len(engine.list_pending_approvals(ANN))
        expect(page.locator("#cs-who")).to_contain_text(
            f"{waiting_now} waiting", timeout=(REFRESH_SECONDS + 10) * 1000
        )
        page.locator("#cs-choice input").click()
        page.get_by_role("option", name=re.compile(rotation[:8])).click()
        page.locator("#cs-approve").click()  # at once: the deploy form is still drawn
        result = page.locator("#cs-result")
        expect(result).to_contain_text(re.compile("Not sent|Recorded|Refused"))
        assert "Error" not in (result.text_content() or "")
        decided = engine.get(rotation)
        if "Not sent" in (result.text_content() or ""):
            refused += 1
            assert decided.status == "pending" and engine.responses(rotation) == []
            break
        # The drawing won the race: the rotation was answered from its own form.
        assert decided.status in ("pending", "approved")
        if decided.status == "approved":
            assert decided.decision_data == {"keys": 1}
        page.locator("#cs-choice input").click()
        page.get_by_role("option", name=re.compile(deploy[:8])).click()
        expect(page.locator("#cs-field-replicas")).to_be_visible()
    assert engine.get(deploy).status == "pending"  # never answered with the rotation's click
    assert refused == 1, "the click never raced the drawing in five tries"


def choose(page: Any, approval_id: str) -> None:
    page.locator("#cs-choice input").click()
    page.get_by_role("option", name=re.compile(approval_id[:8])).click()
    drawn_for(page, approval_id)


def test_a_click_that_arrives_after_a_bigger_form_is_drawn_is_not_sent_and_says_so(
    sqlite_db: Database, approver_page: tuple[Any, str]
) -> None:
    """The race made certain: Approve is clicked on the one-field rotation form, the
    network holds the click while the deploy form (more fields) is drawn, then lets
    it through. It reaches the form's event with fewer values than the new drawing
    takes; the page says "Not sent" in words (not Gradio's bare "Error"), and
    neither request is answered."""
    page, _ = approver_page
    engine = ApprovalEngine(sqlite_db)
    rotation = engine.request_approval(
        None,
        "Rotate the keys",
        approval_type="form",
        requested_from=ANN,
        requested_by="agent@example.com",
        config={"channels": [], "schema": ROTATION_FORM},
    ).id
    deploy = open_form_request(page, sqlite_db, "Deploy the release")
    choose(page, rotation)
    held: list[Any] = []

    def hold_the_rotation_click(route: Any) -> None:
        data = (route.request.post_data_json or {}).get("data") or []
        if len(data) > 1 and data[1] == rotation:  # (choice, drawn_for, ...): this click
            held.append(route)
        else:
            route.continue_()

    page.route("**/gradio_api/queue/join*", hold_the_rotation_click)
    page.locator("#cs-approve").click()
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the click never left the page"
    choose(page, deploy)
    expect(page.locator("#cs-field-replicas")).to_be_visible()
    held[0].continue_()
    result = page.locator("#cs-result")
    expect(result).to_contain_text("Not sent")
    assert "Error" not in (result.text_content() or "")
    for approval_id in (rotation, deploy):
        assert engine.get(approval_id).status == "pending" and engine.responses(approval_id) == []


def test_approve_and_allow_calls_like_this_in_the_browser_releases_the_next_one(
    sqlite_db: Database, approver_page: tuple[Any, str], chromium: Any
) -> None:
    """A policy manager approves a payment and allows calls like it for a week, with a
    condition: the tool receives this call, then the next one within the condition
    without anybody being asked; one beyond it is asked about."""
    _, gateway = approver_page
    calls = Calls()
    registry = pay_registry(calls)
    add_user(sqlite_db, FINANCE, password=PASSWORD, role="admin")
    _, approval = waiting(sqlite_db, registry)
    with signed_in(chromium, gateway, FINANCE) as page:
        page.locator("#cs-choice input").click()
        page.get_by_role("option", name=re.compile(approval.id[:8])).click()
        expect(page.locator("#cs-allow-row")).to_be_visible()
        expect(page.locator("#cs-allow-when textarea, #cs-allow-when input").first).to_have_attribute(
            "placeholder", re.compile(r"args\.amount <= 12500")
        )
        page.locator("#cs-allow input[type=checkbox]").check()
        page.locator("#cs-allow-days input[type=number]").fill("7")
        page.locator("#cs-allow-when textarea, #cs-allow-when input").first.fill("args.amount <= 13000")
        drawn_for(page, approval.id).locator("#cs-approve").click()
        expect(page.locator("#cs-result")).to_contain_text("Calls like this are allowed for 7 days")
    run(sqlite_db, registry)
    assert calls.of("pay") == [PROPOSED]
    assert released(sqlite_db, registry, 12000) and calls.of("pay")[-1] == {**PROPOSED, "amount": 12000}
    assert not released(sqlite_db, registry, 14000) and len(calls.of("pay")) == 2
