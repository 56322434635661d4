"""What the tool receives after an answer given on the email confirmation page.

The GET shows the call and a form (a budget's approved amount, a field per
argument of the tool's input schema, pre-filled); the test submits that very
form as a browser would, with what the approver typed in it, and a crafted
field where the page offers none (another tool). Each case of ``CASES`` ends
with the runner running again and the recording ``pay`` tool saying what it
received.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.store.db import Database
from tests.helpers.approved_calls import CASES, FINANCE, PROPOSED, pay_registry, run, waiting
from tests.helpers.engine import Calls

CONFIRM = "/email/confirm"
WORDS = "twelve thousand five hundred US dollars"


@pytest.fixture(autouse=True)
def link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "gateway-tests-link-secret")


class Form(HTMLParser):
    """The fields of the page's form as a browser submits them (buttons aside)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None
        self._first = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "input" and "name" in found:
            self.fields[found["name"]] = found.get("value", "")
        elif tag == "textarea":
            self._textarea, self._first = found.get("name"), True
            self.fields[found["name"]] = ""
        elif tag == "select":
            self._select = found.get("name")
        elif tag == "option" and self._select and ("selected" in found or self._select not in self.fields):
            self.fields[self._select] = found.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            if self._first and data.startswith("\n"):
                data = data[1:]  # as a browser parses it: one newline right after <textarea> is no value's
            self._first = False
            self.fields[self._textarea] += data


def typed_for(data: dict[str, Any]) -> dict[str, str]:
    """A CASES answer as the page's fields; "tool" has none (a crafted form)."""
    typed = {f"arg.{name}": str(value) for name, value in (data.get("arguments") or {}).items()}
    if "approved_amount" in data:
        typed["approved_amount"] = str(data["approved_amount"])
    if "tool" in data:
        typed["tool"] = data["tool"]
    return typed


@pytest.mark.parametrize("case", sorted(CASES))
def test_email(client: TestClient, db: Database, calls: Calls, case: str) -> None:
    approval_type, _, data, received = CASES[case]
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    token = make_link_token(approval.id, FINANCE, "approve")
    shown = client.get(CONFIRM, params={"token": token})
    assert shown.status_code == 200, shown.text
    html = shown.text
    assert "<code>pay</code>" in html and "invoice 7" in html and "12500" in html
    if approval_type == "budget":
        assert f"12,500.00 USD ({WORDS})" in html
    form = Form(html).fields
    assert "tool" not in form  # the page cannot name another tool
    form.update(typed_for(data), decision="approve")
    done = client.post(CONFIRM, data=form)
    if received is None:
        assert done.status_code == 422, done.text
        if case == "schema_broken":  # shown under its field, what was typed kept
            assert "&#39;a lot&#39; is not of type &#39;number&#39;" in done.text
            assert Form(done.text).fields["arg.amount"] == "a lot"
        else:
            assert "cannot name another tool" in done.text
        assert ApprovalEngine(db).get(approval.id).status == "pending"
        assert ApprovalEngine(db).responses(approval.id) == []
        # The link was not spent: the page opens again.
        assert client.get(CONFIRM, params={"token": token}).status_code == 200
    else:
        assert done.status_code == 200, done.text
        assert "You approved" in done.text
    run(db, registry)
    assert calls.of("pay") == ([received] if received is not None else [])
    assert calls.of("refund") == []
    if received is not None:
        [vote] = ApprovalEngine(db).responses(approval.id)
        assert (vote.channel, vote.approver) == ("email", FINANCE)
        assert client.post(CONFIRM, data=form).status_code == 410  # once


def test_the_page_offers_a_field_per_argument_and_a_budget_amount(
    client: TestClient, db: Database, calls: Calls
) -> None:
    _, binary = waiting(db, pay_registry(calls))
    form = Form(client.get(CONFIRM, params={"token": make_link_token(binary.id, FINANCE)}).text)
    assert {k: v for k, v in form.fields.items() if k.startswith("arg.")} == {
        "arg.amount": "12500",
        "arg.currency": "USD",
        "arg.note": "invoice 7",
    }
    assert "approved_amount" not in form.fields
    _, budget = waiting(db, pay_registry(calls), "budget")
    html = client.get(CONFIRM, params={"token": make_link_token(budget.id, FINANCE)}).text
    fields = Form(html).fields
    assert fields["approved_amount"] == "12500" and "arg.amount" not in fields
    assert "at most 12,500.00 USD (twelve thousand five hundred US dollars)" in html
    # A reject-only link offers no edit.
    reject = Form(
        client.get(CONFIRM, params={"token": make_link_token(budget.id, FINANCE, "reject")}).text
    ).fields
    assert "approved_amount" not in reject and not any(k.startswith("arg.") for k in reject)


def test_edits_and_amount_together_and_reject_ignores_edits(
    client: TestClient, db: Database, calls: Calls
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget")
    token = make_link_token(approval.id, FINANCE)
    form = Form(client.get(CONFIRM, params={"token": token}).text).fields
    form.update({"approved_amount": "9,000", "arg.note": "invoice 7, part 1", "decision": "approve"})
    done = client.post(CONFIRM, data=form)
    assert done.status_code == 200, done.text
    assert "with changes" in done.text and "nine thousand US dollars" in done.text
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "amount": 9000, "note": "invoice 7, part 1"}]

    _, other = waiting(db, registry)
    token = make_link_token(other.id, FINANCE)
    form = Form(client.get(CONFIRM, params={"token": token}).text).fields
    form.update({"arg.note": "ignored", "decision": "reject"})
    assert "You rejected" in client.post(CONFIRM, data=form).text
    [vote] = ApprovalEngine(db).responses(other.id)
    assert (vote.decision, vote.data) == ("reject", {})


def test_a_raised_budget_is_refused_under_the_amount_field(
    client: TestClient, db: Database, calls: Calls
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget")
    token = make_link_token(approval.id, FINANCE, "approve")
    form = Form(client.get(CONFIRM, params={"token": token}).text).fields
    form.update(approved_amount="13000", decision="approve")
    refused = client.post(CONFIRM, data=form)
    assert refused.status_code == 422
    assert (
        'class="field-error">13,000.00 is more than the 12,500.00 USD requested; you may only lower it'
        in refused.text
    )
    run(db, registry)
    assert calls.of("pay") == []


def test_a_budget_gate_without_a_call_takes_a_lower_amount(client: TestClient, db: Database) -> None:
    from tests.integration.gateway.conftest import BOSS, waiting_workflow

    _, approval = waiting_workflow(db, {"type": "budget", "context_data": {"amount": 500, "currency": "EUR"}})
    token = make_link_token(approval.id, BOSS, "approve")
    html = client.get(CONFIRM, params={"token": token}).text
    assert "500.00 EUR (five hundred euros)" in html
    form = Form(html).fields
    assert not any(k.startswith("arg.") for k in form)
    form.update(approved_amount="300", decision="approve")
    done = client.post(CONFIRM, data=form)
    assert done.status_code == 200 and "300.00 EUR (three hundred euros)" in done.text
    decided = ApprovalEngine(db).get(approval.id)
    assert (decided.status, decided.decision_data["approved_amount"]) == ("modified", 300)
