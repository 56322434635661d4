"""What the tool receives after an answer given in the Gradio approver UI at /approve.

The request shows the call (an HTML table inside the Markdown, agent text
escaped) and comes with the call's arguments pre-filled in a JSON editor; a
budget's amount is one field, the answer form's approved amount (the HTTP API
also has an amount input: one amount only, or the answer is refused). The test
edits them as an approver would (another tool only through the free-form answer
JSON, which the UI does not offer for it) and presses a button, through the
handler functions, through Gradio's own HTTP API as the signed-in user and in
Chromium. Each case ends with the runner running again and the recording ``pay``
tool saying what it received. An answer counts only for the level and call it
was shown (the page's drawing, the API's ``shown`` from details): once an
earlier level changed the call it is refused, and the page draws the call as it
is now.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from gateway.app import create_app
from gateway.approver_answers import answer, call_editor, details
from tests.e2e.test_gradio_approver import drawn_for, signed_in
from tests.helpers.approved_calls import (
    CASES,
    FINANCE,
    PROPOSED,
    REQUESTER,
    pay_registry,
    pay_step,
    run,
    waiting,
)
from tests.helpers.browser import sign_in
from tests.helpers.engine import Calls
from tests.integration.gateway.test_outdated_answers import (
    ADMIN,
    ESCROW,
    OUTDATED,
    finance_changes_the_note,
    two_levels,
)
from tests.reliability.browser_sites import gateway_site

PASSWORD = "correct horse battery"
WORDS = "12,500.00 USD (twelve thousand five hundred US dollars)"
RUN = "/approve/gradio_api/run"


def edited(
    data: dict[str, Any], arguments_json: str, prefilled: str, amount: float | None
) -> tuple[str, str, float | None]:
    """A CASES answer as the UI's inputs: (answer JSON, arguments editor, amount field)."""
    arguments = json.loads(arguments_json)
    answer_json = prefilled
    if "tool" in data:  # no input names a tool: only the free-form answer JSON can
        answer_json = json.dumps({"tool": data["tool"], "arguments": data["arguments"]})
    else:
        arguments.update(data.get("arguments") or {})
    return answer_json, json.dumps(arguments, indent=2), data.get("approved_amount", amount)


def check(
    db: Database,
    calls: Calls,
    registry: Any,
    approval_id: str,
    case: str,
    message: str,
    received: dict[str, Any] | None,
) -> None:
    if received is None:
        assert message.startswith("**Refused:**"), message
        assert (
            "arguments.amount: 'a lot' is not of type" in message
            if case == "schema_broken"
            else "cannot name another tool" in message
        ), message
        assert ApprovalEngine(db).get(approval_id).status == "pending"
        assert ApprovalEngine(db).responses(approval_id) == []
    else:
        assert message.startswith("**Recorded.**"), message
        [vote] = ApprovalEngine(db).responses(approval_id)
        assert (vote.channel, vote.approver) == ("gradio", FINANCE)
    run(db, registry)
    assert calls.of("pay") == ([received] if received is not None else [])
    assert calls.of("refund") == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradio(db: Database, calls: Calls, case: str) -> None:
    approval_type, decision, data, received = CASES[case]
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    markdown, prefilled, _ = details(db, FINANCE, approval.id)
    assert "<code>pay</code>" in markdown and "<td>invoice 7</td>" in markdown
    assert "<td>12500</td>" in markdown
    if approval_type == "budget":
        assert WORDS in markdown
    arguments_json, amount = call_editor(db, FINANCE, approval.id)
    if approval_type == "budget":  # the amount is the answer form's field, not an argument to edit
        assert json.loads(arguments_json) == {k: v for k, v in PROPOSED.items() if k != "amount"}
    else:
        assert json.loads(arguments_json) == PROPOSED
    assert amount == (12500 if approval_type == "budget" else None)
    answer_json, arguments_json, amount = edited(data, arguments_json, prefilled, amount)
    button = "Approve with changes" if decision == "modify" else "Approve"
    message = answer(db, FINANCE, approval.id, button, answer_json, "", arguments_json, amount)
    check(db, calls, registry, approval.id, case, message, received)


@pytest.fixture
def ui(db: Database) -> Iterator[TestClient]:
    add_user(db, FINANCE, password=PASSWORD)
    with TestClient(create_app(db)) as test_client:
        sign_in(test_client, FINANCE, PASSWORD)
        yield test_client


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradio_over_its_http_api(ui: TestClient, db: Database, calls: Calls, case: str) -> None:
    approval_type, decision, data, received = CASES[case]
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    shown = ui.post(f"{RUN}/details", json={"data": [approval.id]})
    assert shown.status_code == 200, shown.text
    markdown, prefilled, _, arguments_json, amount, issued = shown.json()["data"]
    assert "<td>invoice 7</td>" in markdown
    answer_json, arguments_json, amount = edited(data, arguments_json, prefilled, amount)
    api = "modify" if decision == "modify" else "approve"
    result = ui.post(
        f"{RUN}/{api}", json={"data": [approval.id, answer_json, "", arguments_json, amount, issued]}
    )
    assert result.status_code == 200, result.text
    check(db, calls, registry, approval.id, case, result.json()["data"][0], received)


def test_agent_text_cannot_link_or_embed_in_the_view(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    note = "[verify](https://evil.example) ![x](https://evil.example/t.png) <b>bold</b>\n\n# big"
    add_user(db, REQUESTER, role="service")  # who starts a workflow has an account
    workflow = ops.create_workflow(
        db,
        {"name": "pay", "steps": [pay_step()]},
        input_data={"amount": 5, "note": note},
        created_by=REQUESTER,
    )
    run(db, registry)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow.id)
    markdown, _, _ = details(db, FINANCE, approval.id)
    # Each block is one HTML line (Markdown is not parsed inside), blocks apart by one blank line.
    blocks = markdown.split("\n\n")
    assert all(block.startswith(("<h3>", "<p>", "<table>")) and "\n" not in block for block in blocks), blocks
    assert (
        "[verify](https://evil.example) ![x](https://evil.example/t.png) &lt;b&gt;bold"
        "&lt;/b&gt;<br><br># big" in markdown
    )
    assert "<b>" not in markdown


def test_allow_calls_like_this_needs_policies_manage_and_is_one_transaction(
    db: Database, calls: Calls
) -> None:
    """From the Gradio handler: an approver without ``policies:manage`` who asks for a
    standing rule is refused and records no vote (the vote and the rule are one
    transaction); a rejection makes no rule; a policy manager's approval makes it."""
    from core.approvals.standing_rules import list_rules
    from core.base.errors import NotAuthorized

    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    add_user(db, FINANCE, role="approver")
    refused = answer(db, FINANCE, approval.id, "Approve", "{}", "", allow_for_days=7)
    assert refused.startswith("**Refused:**") and "policies:manage" in refused
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    assert ApprovalEngine(db).responses(approval.id) == []
    add_user(db, FINANCE, role="admin")
    assert answer(db, FINANCE, approval.id, "Reject", "{}", "no", allow_for_days=7).startswith("**Recorded")
    assert list_rules(db, FINANCE, include_ended=True) == []
    _, second = waiting(db, registry)
    made = answer(db, FINANCE, second.id, "Approve", "{}", "", allow_for_days=3, allow_when="args.amount < 1")
    assert made.endswith("Calls like this are allowed for 3 days."), made
    [rule] = list_rules(db, FINANCE)
    assert (rule["tool"], rule["condition"], rule["source_approval_id"]) == (
        "pay",
        "args.amount < 1",
        second.id,
    )
    with pytest.raises(NotAuthorized):
        list_rules(db, "nobody@example.com")


def details_over_http(ui: TestClient, approval_id: str) -> list[Any]:
    """The HTTP API's details: (view, answer JSON, schema, arguments, amount, shown)."""
    shown = ui.post(f"{RUN}/details", json={"data": [approval_id]})
    assert shown.status_code == 200, shown.text
    return list(shown.json()["data"])


def test_the_http_api_takes_one_amount(ui: TestClient, db: Database, calls: Calls) -> None:
    """The answer's approved amount and the amount input disagree: refused, nothing
    recorded (3000 was recorded and the tool ran with it, the 1000 ignored). Only one
    lowered: that one, and the tool receives it."""
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget")
    event = [approval.id, json.dumps({"approved_amount": 1000}), "", "", 3000]
    [message, *_] = ui.post(f"{RUN}/modify", json={"data": event}).json()["data"]
    assert message.startswith("**Refused:**") and "give one amount" in message, message
    assert ApprovalEngine(db).responses(approval.id) == []
    _, prefilled, _, arguments_json, amount, issued = details_over_http(ui, approval.id)
    assert (json.loads(prefilled), amount) == ({"approved_amount": 12500}, 12500)
    event = [approval.id, prefilled, "", arguments_json, 3000, issued]
    [message, *_] = ui.post(f"{RUN}/modify", json={"data": event}).json()["data"]
    assert message.startswith("**Recorded.**"), message
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert vote.data["approved_amount"] == 3000
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "amount": 3000}]


@pytest.mark.browser
def test_one_approved_amount_on_the_page_is_what_the_tool_receives(
    db: Database, calls: Calls, chromium: Any
) -> None:
    """The page shows one "Approved amount" (the answer form's: its bounds said as the
    engine applies them); the call's editor holds the other arguments. Lowered to 1000
    and approved with changes: recorded as 1000, and the tool receives 1000."""
    registry = pay_registry(calls)
    add_user(db, FINANCE, password=PASSWORD)
    _, approval = waiting(db, registry, "budget")
    with gateway_site(db) as gateway, signed_in(chromium, gateway, FINANCE) as page:
        page.locator("#cs-choice input").click()
        page.get_by_role("option", name=re.compile(approval.id[:8])).click()
        drawn_for(page, approval.id)
        expect(page.locator("#cs-field-approved_amount input")).to_have_value("12500")
        expect(page.get_by_label(re.compile("Approved amount"))).to_have_count(1)
        expect(page.get_by_text("Must be more than 0 and at most 12500.")).to_be_visible()
        editor = page.locator("#cs-arguments")
        expect(editor).to_contain_text("invoice 7")
        assert '"amount"' not in (editor.text_content() or "")
        page.locator("#cs-field-approved_amount input").fill("1000")
        page.locator("#cs-modify").click()
        expect(page.locator("#cs-result")).to_contain_text("Recorded")
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert vote.data["approved_amount"] == 1000
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "amount": 1000}]


def test_an_http_api_answer_counts_only_for_what_details_showed(db: Database, calls: Calls) -> None:
    """Gradio's HTTP API as the dashboard, REST and the CLI: an answer carries what
    details showed (``shown``: level and call digest) and is refused as out of date once
    an earlier level changed the call; one that names nothing counts only for the
    request as first asked. Read again, the answer counts and the tool receives the
    call the approver was shown."""
    registry, approval = two_levels(db, calls)
    add_user(db, ADMIN, role="admin", password=PASSWORD)
    with TestClient(create_app(db)) as ui:
        sign_in(ui, ADMIN, PASSWORD)
        before = details_over_http(ui, approval.id)
        assert json.loads(before[3])["note"] == "invoice 7"
        finance_changes_the_note(db, approval.id)
        unsaid = [approval.id, before[1], "", before[3], None]  # a script from before ``shown``
        [message, *_] = ui.post(f"{RUN}/approve", json={"data": unsaid}).json()["data"]
        assert message.startswith("**Refused:**") and OUTDATED in message, message
        assert "as first asked" in message, message
        [message, *_] = ui.post(f"{RUN}/approve", json={"data": [*unsaid, before[5]]}).json()["data"]
        assert message.startswith("**Refused:**") and OUTDATED in message, message
        assert [v.approver for v in ApprovalEngine(db).responses(approval.id)] == [FINANCE]
        now = details_over_http(ui, approval.id)
        assert json.loads(now[3])["note"] == ESCROW and now[5] != before[5]
        event = [approval.id, now[1], "", now[3], now[4], now[5]]
        [message, *_] = ui.post(f"{RUN}/approve", json={"data": event}).json()["data"]
        assert message.startswith("**Recorded.**"), message
    run(db, registry)  # type: ignore[arg-type]
    assert calls.of("pay") == [{**PROPOSED, "note": ESCROW}]


@pytest.mark.browser
def test_an_answer_refused_as_out_of_date_draws_the_call_as_it_is_now(
    sqlite_db: Database, calls: Calls, chromium: Any
) -> None:
    """The admin's page shows the call at level 1; finance then passes level 1 with
    another note. The admin's Approve is refused, and the page says what changed and
    shows the call as it is now (the note in the view and the editor), so a second
    Approve approves what the admin sees: the tool receives that note."""
    registry, approval = two_levels(sqlite_db, calls)
    add_user(sqlite_db, ADMIN, role="admin", password=PASSWORD)
    with gateway_site(sqlite_db) as gateway, signed_in(chromium, gateway, ADMIN) as page:
        page.locator("#cs-choice input").click()
        page.get_by_role("option", name=re.compile(approval.id[:8])).click()
        details = page.locator("#cs-details")
        expect(details).to_contain_text("invoice 7")
        finance_changes_the_note(sqlite_db, approval.id)
        drawn_for(page, approval.id).locator("#cs-approve").click()
        result = page.locator("#cs-result")
        expect(result).to_contain_text("Not recorded")
        expect(result).to_contain_text("level 2 now, and an earlier level changed the call")
        expect(details).to_contain_text(ESCROW)
        expect(page.locator("#cs-arguments")).to_contain_text(ESCROW)
        assert [v.approver for v in ApprovalEngine(sqlite_db).responses(approval.id)] == [FINANCE]
        drawn_for(page, approval.id).locator("#cs-approve").click()
        expect(result).to_contain_text("Recorded")
    run(sqlite_db, registry)  # type: ignore[arg-type]
    assert calls.of("pay") == [{**PROPOSED, "note": ESCROW}]
