"""The email confirmation page in Chromium: a choice or a flag the call does not set
stays unset unless the approver sets it.

The guarded ``notify_customer`` call leaves out ``urgent`` (a boolean, default
False), ``channel`` (one of "sms", "email"; default "email") and ``tier`` (one
of "a", "b", or null), and sets ``escalate`` (a boolean or null) to null. A
``<select>`` with no option selected submits its first one, so each is drawn
with a "— not set —" option, selected: Approve, untouched, is a plain approval
and the tool receives its own defaults (not ``urgent=True``, ``channel="sms"``).
An approver who picks a value releases that value, and only that one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.store.db import Database
from core.store.tables import ApprovalRequest
from tests.e2e.server import fresh_page
from tests.helpers.approved_calls import FINANCE, run
from tests.helpers.engine import Calls
from tests.helpers.notify_call import RECEIVED, notify_registry, waiting_notice
from tests.reliability.browser_sites import gateway_site

pytestmark = pytest.mark.browser

NOT_SET = "— not set —"


@pytest.fixture(autouse=True)
def link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "email-page-choices-link-secret")


@pytest.fixture
def gateway(db: Database) -> Iterator[str]:
    with gateway_site(db, approver_ui=False) as url:
        yield url


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    with fresh_page(chromium) as page:
        yield page


def open_link(page: Any, gateway: str, approval: ApprovalRequest) -> None:
    page.goto(f"{gateway}/email/confirm?token={make_link_token(approval.id, FINANCE, 'approve')}")
    page.get_by_role("button", name="Approve").wait_for()


def approve(page: Any) -> str:
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("heading", name="Thank you").wait_for()
    return str(page.text_content("body") or "")


def selected(page: Any, name: str) -> str:
    """The text of the option a select shows (what the browser submits is its value)."""
    return str(page.eval_on_selector(f"select[name='arg.{name}']", "s => s.options[s.selectedIndex].text"))


def test_an_untouched_approve_leaves_unset_choices_and_flags_unset(
    db: Database, calls: Calls, gateway: str, browser_page: Any
) -> None:
    registry = notify_registry(calls)
    approval = waiting_notice(db, registry)
    open_link(browser_page, gateway, approval)
    for name in ("urgent", "channel", "escalate", "tier"):
        assert selected(browser_page, name) == NOT_SET, name
    thanks = approve(browser_page)
    assert "with changes" not in thanks
    assert ApprovalEngine(db).get(approval.id).status == "approved"
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.decision, vote.data, vote.channel) == ("approve", {}, "email")
    run(db, registry)
    assert calls.of("notify_customer") == [RECEIVED]


def test_a_choice_the_approver_makes_is_the_only_change(
    db: Database, calls: Calls, gateway: str, browser_page: Any
) -> None:
    registry = notify_registry(calls)
    approval = waiting_notice(db, registry)
    open_link(browser_page, gateway, approval)
    browser_page.get_by_text("Change the call's arguments before approving").click()
    browser_page.select_option("select[name='arg.channel']", label="sms")
    thanks = approve(browser_page)
    assert "with changes" in thanks
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.decision, vote.data) == ("modify", {"arguments": {"channel": "sms"}})
    run(db, registry)
    assert calls.of("notify_customer") == [{**RECEIVED, "channel": "sms"}]
