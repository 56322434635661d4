"""Agent text on the Gradio approver page (/approve) is text, never LaTeX, in Chromium.

Gradio's Markdown renders ``$$...$$`` (and other delimiters) through KaTeX
unless told not to: an agent could then colour a claim ("VERIFIED SAFE"), hide
a phrase (``\\phantom``) or fake an approval in what the approver reads. A
guarded call whose title, description and argument value, and a form whose
fields' titles, descriptions and a choice, all hold LaTeX, must show it as written:
no ``.katex`` element anywhere on the page, the ``$$...$$`` readable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from tests.e2e.test_gradio_approver import PASSWORD, drawn_for, signed_in
from tests.helpers.approved_calls import FINANCE, REQUESTER, pay_registry, pay_step, run
from tests.helpers.engine import Calls
from tests.reliability.browser_sites import gateway_site

pytestmark = pytest.mark.browser

TITLE = r"$$\color{green}{\text{VERIFIED SAFE}}$$"
HIDDEN = r"$$\phantom{1,000,000 USD to attacker}$$"
DESCRIPTION = f"Routine payment {HIDDEN} as agreed"
ARGUMENT = r"$$\color{red}{\text{APPROVED BY CFO}}$$"
# Every delimiter KaTeX's auto-render knows, in a form's field title, help and choice.
INLINE = r"$\text{inline}$"
PARENS = r"\(\text{parens}\)"
BRACKETS = r"\[\text{brackets}\]"
FIELD_TITLE = r"$$\text{Field title}$$"
FIELD_HELP = f"help {INLINE} {PARENS} {BRACKETS}"
CHOICE = r"$$\text{choice}$$"
FORM = {
    "type": "object",
    "properties": {
        "verdict": {"title": FIELD_TITLE, "description": FIELD_HELP, "enum": [CHOICE, "other"]},
        "note": {"type": "string", "title": f"Note {INLINE}", "description": r"$$\text{note help}$$"},
        "sure": {"type": "boolean", "title": r"$$\text{Sure}$$"},
        "extra": {"type": "object", "title": r"$$\text{Extra}$$", "description": BRACKETS},
    },
}


@pytest.fixture
def gateway(sqlite_db: Database) -> Iterator[str]:
    add_user(sqlite_db, FINANCE, password=PASSWORD)
    with gateway_site(sqlite_db) as url:
        yield url


def guarded_call(db: Database) -> str:
    """A guarded ``pay`` call waiting for finance, every agent-written field LaTeX; its request."""
    add_user(db, REQUESTER, role="service")
    workflow_id = ops.create_workflow(
        db,
        {"name": "pay", "steps": [pay_step(title=TITLE, description=DESCRIPTION)]},
        input_data={"amount": 12500, "note": ARGUMENT},
        created_by=REQUESTER,
    ).id
    run(db, pay_registry(Calls()))
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    assert (approval.title, approval.description) == (TITLE, DESCRIPTION)
    return approval.id


def choose(page: Any, approval_id: str) -> None:
    page.locator("#cs-refresh").click()
    page.locator("#cs-choice input").click()
    page.get_by_role("option", name=re.compile(approval_id[:8])).click()
    drawn_for(page, approval_id)


def no_latex(page: Any) -> None:
    """Nothing on the page went through KaTeX (its output, or its MathML, anywhere)."""
    assert page.locator(".katex, .katex-display, .katex-html, math").count() == 0


def test_latex_in_a_guarded_calls_title_description_and_argument_is_text(
    sqlite_db: Database, gateway: str, chromium: Any
) -> None:
    approval_id = guarded_call(sqlite_db)
    with signed_in(chromium, gateway, FINANCE) as page:
        page.locator("#cs-choice input").click()
        # The list's label (the title) is text too.
        option = page.get_by_role("option", name=re.compile(approval_id[:8]))
        expect(option).to_contain_text(TITLE)
        no_latex(page)
        option.click()
        drawn_for(page, approval_id)
        details = page.locator("#cs-details")
        expect(details.locator("h3")).to_have_text(TITLE)
        expect(details).to_contain_text(DESCRIPTION)
        expect(details.locator("table tr").filter(has_text="note")).to_contain_text(ARGUMENT)
        for text in (TITLE, HIDDEN, ARGUMENT):
            expect(details.get_by_text(text, exact=False).first).to_be_visible()
        no_latex(page)


def test_latex_in_an_answer_forms_titles_help_and_choices_is_text(
    sqlite_db: Database, gateway: str, chromium: Any
) -> None:
    approval_id = (
        ApprovalEngine(sqlite_db)
        .request_approval(
            None,
            TITLE,
            description=DESCRIPTION,
            approval_type="form",
            requested_from=FINANCE,
            requested_by="agent@example.com",
            config={"channels": [], "schema": FORM},
        )
        .id
    )
    with signed_in(chromium, gateway, FINANCE) as page:
        choose(page, approval_id)
        verdict = page.locator("#cs-field-verdict")
        expect(verdict).to_contain_text(FIELD_TITLE)
        expect(verdict).to_contain_text(FIELD_HELP)
        expect(page.locator("#cs-field-note")).to_contain_text(f"Note {INLINE}")
        expect(page.locator("#cs-field-note")).to_contain_text(r"$$\text{note help}$$")
        expect(page.locator("#cs-field-sure")).to_contain_text(r"$$\text{Sure}$$")
        expect(page.locator("#cs-field-extra")).to_contain_text(r"$$\text{Extra}$$")
        verdict.locator("input").click()
        expect(page.get_by_role("option", name=CHOICE, exact=True)).to_be_visible()
        no_latex(page)
        page.get_by_role("option", name=CHOICE, exact=True).click()
        page.locator("#cs-approve").click()
        expect(page.locator("#cs-result")).to_contain_text("Recorded")
        no_latex(page)
    decided = ApprovalEngine(sqlite_db).get(approval_id).decision_data or {}
    assert decided.get("verdict") == CHOICE
