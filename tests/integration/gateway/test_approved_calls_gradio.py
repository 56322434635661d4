"""What the tool receives after an answer given in the Gradio approver UI at /approve.

The request shows the call (an HTML table inside the Markdown, agent text
escaped) and comes with the call's arguments pre-filled in a JSON editor and
a budget's amount in a number field. The test edits them as an approver
would (another tool only through the free-form answer JSON, which the UI
does not offer for it) and presses a button, through the handler functions
and through Gradio's own HTTP API as the signed-in user. Each case of
``CASES`` ends with the runner running again and the recording ``pay`` tool
saying what it received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from gateway.app import create_app
from gateway.approver_answers import answer, call_editor, details
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
    markdown, prefilled, _, arguments_json, amount = shown.json()["data"]
    assert "<td>invoice 7</td>" in markdown
    answer_json, arguments_json, amount = edited(data, arguments_json, prefilled, amount)
    api = "modify" if decision == "modify" else "approve"
    result = ui.post(f"{RUN}/{api}", json={"data": [approval.id, answer_json, "", arguments_json, amount]})
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
