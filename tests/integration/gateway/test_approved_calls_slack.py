"""What the tool receives after an answer given in Slack: buttons and the Edit modal.

Every payload is signed with the signing secret as Slack signs it and posted
to ``/slack/interactivity``. The Edit button opens the modal through the real
``slack_sdk`` client (``views.open``) against a loopback stand-in for Slack;
the test then submits that very modal (``view_submission``) with the inputs
an approver would leave in it. Each case of ``CASES`` ends with the runner
running again and the recording ``pay`` tool saying what it received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from core.approvals import standing_rules
from core.approvals.engine import ApprovalEngine
from core.channels.slack import AMOUNT_BLOCK, ARGUMENT_BLOCK, COMMENT_BLOCK, EDIT_ACTION
from core.channels.slack_allow import ALLOW_BLOCK, ALLOW_DAYS_BLOCK, ALLOW_WHEN_BLOCK
from core.identity.users import add_user
from core.store.db import Database
from gateway.slack import handle_socket_request
from tests.helpers.approved_calls import (
    CASES,
    FINANCE,
    PROPOSED,
    pay_registry,
    released,
    run,
    waiting,
)
from tests.helpers.engine import Calls
from tests.integration.gateway.loopback import Recorder, loopback_server
from tests.integration.gateway.test_slack import SECRET, click, signed

FINANCE_SLACK = "U0FINANCE"
TRIGGER = "12345.98765.abcd2358fdea"


@pytest.fixture(autouse=True)
def slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({FINANCE: FINANCE_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """The loopback Slack Web API the real WebClient talks to, with a bot token."""
    with loopback_server() as server:
        monkeypatch.setenv("SLACK_API_URL", f"{server.url}/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        yield server


def post(client: TestClient, payload: dict[str, Any]) -> Any:
    body = urlencode({"payload": json.dumps(payload)})
    return client.post("/slack/interactivity", content=body, headers=signed(body))


def press(approval_id: str, action: str, **extra: Any) -> dict[str, Any]:
    """A new press of a button sent for the request's first level."""
    pressed = click(approval_id, action, FINANCE_SLACK)
    return {**pressed, "user": {"id": FINANCE_SLACK, "username": "finance"}, **extra}


def open_modal(client: TestClient, slack: Recorder, approval_id: str) -> dict[str, Any]:
    """Press Edit; the modal as views.open received it."""
    response = post(client, press(approval_id, EDIT_ACTION, trigger_id=TRIGGER))
    assert response.status_code == 200 and response.content == b"", response.text
    [(_, _, body)] = [r for r in slack.requests if r[1] == "/api/views.open"]
    sent = json.loads(body)
    assert sent["trigger_id"] == TRIGGER
    view = sent["view"]
    return view if isinstance(view, dict) else json.loads(view)


def inputs(modal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in modal["blocks"] if b["type"] == "input"}


def submission(
    modal: dict[str, Any], typed: dict[str, str | None] | None = None, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The view_submission Slack sends: every input as the modal pre-filled it, then
    what the approver (or a crafted payload) typed."""
    values: dict[str, Any] = {}
    for block_id, block in inputs(modal).items():
        element = block["element"]
        if element["type"] == "static_select":
            state = {"type": "static_select", "selected_option": element.get("initial_option")}
        else:
            state = {"type": element["type"], "value": element.get("initial_value")}
        values[block_id] = {element["action_id"]: state}
    for block_id, text in (typed or {}).items():
        state = values.setdefault(block_id, {"value": {"type": "plain_text_input"}})["value"]
        state["value"] = text
    view = {**modal, "id": "V0EDIT", "state": {"values": values}}
    if metadata:
        view["private_metadata"] = json.dumps({**json.loads(modal["private_metadata"]), **metadata})
    return {"type": "view_submission", "user": {"id": FINANCE_SLACK, "username": "finance"}, "view": view}


def typed_for(data: dict[str, Any]) -> tuple[dict[str, str | None], dict[str, Any]]:
    """A CASES answer as modal inputs, and what only a crafted payload can say."""
    typed: dict[str, str | None] = {
        ARGUMENT_BLOCK + name: str(value) for name, value in (data.get("arguments") or {}).items()
    }
    if "approved_amount" in data:
        typed[AMOUNT_BLOCK] = str(data["approved_amount"])
    return typed, ({"tool": data["tool"]} if "tool" in data else {})


@pytest.mark.parametrize("case", sorted(CASES))
def test_slack(client: TestClient, db: Database, calls: Calls, slack: Recorder, case: str) -> None:
    approval_type, _, data, received = CASES[case]
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    if not data:  # the Approve button says it
        reply = post(client, press(approval.id, "countersign_approve")).json()
        assert reply["text"].startswith("You approved"), reply
    else:
        modal = open_modal(client, slack, approval.id)
        typed, crafted = typed_for(data)
        answer = post(client, submission(modal, typed, crafted))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if received is None:
            assert body["response_action"] == "errors", body
            errors = body["errors"]
            if case == "schema_broken":  # under the input it names
                assert "'a lot' is not of type 'number'" in errors[ARGUMENT_BLOCK + "amount"]
            else:
                assert "cannot name another tool ('refund')" in " ".join(errors.values())
            assert set(errors) <= set(inputs(modal))  # Slack shows errors only under inputs
            assert ApprovalEngine(db).get(approval.id).status == "pending"
            assert ApprovalEngine(db).responses(approval.id) == []
        else:
            assert body["response_action"] == "update", body
            assert "You approved" in body["view"]["blocks"][0]["text"]["text"]
    run(db, registry)
    assert calls.of("pay") == ([received] if received is not None else [])
    assert calls.of("refund") == []
    if received is not None:
        [vote] = ApprovalEngine(db).responses(approval.id)
        assert vote.channel == "slack" and vote.approver == FINANCE


def test_the_modal_is_drawn_from_the_input_schema_and_prefilled(
    client: TestClient, db: Database, calls: Calls, slack: Recorder
) -> None:
    _, approval = waiting(db, pay_registry(calls))
    modal = open_modal(client, slack, approval.id)
    assert modal["type"] == "modal" and modal["callback_id"] == "countersign_edit"
    fields = inputs(modal)
    assert list(fields) == [
        ARGUMENT_BLOCK + "amount",
        ARGUMENT_BLOCK + "currency",
        ARGUMENT_BLOCK + "note",
        COMMENT_BLOCK,
    ]
    amount = fields[ARGUMENT_BLOCK + "amount"]["element"]
    assert (amount["type"], amount["initial_value"], amount["is_decimal_allowed"]) == (
        "number_input",
        "12500",
        True,
    )
    assert fields[ARGUMENT_BLOCK + "note"]["element"]["initial_value"] == "invoice 7"
    assert fields[ARGUMENT_BLOCK + "currency"]["element"]["initial_value"] == "USD"
    metadata = json.loads(modal["private_metadata"])
    assert metadata == {
        "approval_id": approval.id,
        "level": 0,
        "digest": approval.proposed_call["digest"],
        "tool": "pay",
    }
    # Left as it opened, the modal approves the call as proposed.
    assert post(client, submission(modal)).json()["response_action"] == "update"
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.decision, vote.data) == ("approve", {})


def test_a_budget_modal_asks_the_approved_amount_instead_of_the_amount_argument(
    client: TestClient, db: Database, calls: Calls, slack: Recorder
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget")
    modal = open_modal(client, slack, approval.id)
    fields = inputs(modal)
    assert ARGUMENT_BLOCK + "amount" not in fields
    amount = fields[AMOUNT_BLOCK]
    assert amount["element"]["initial_value"] == "12500"
    assert amount["element"]["max_value"] == "12500"
    assert "twelve thousand five hundred US dollars" in amount["hint"]["text"]
    raised = post(client, submission(modal, {AMOUNT_BLOCK: "13000"})).json()
    assert raised["response_action"] == "errors"
    assert raised["errors"][AMOUNT_BLOCK] == (
        "13,000.00 is more than the 12,500.00 USD requested; you may only lower it"
    )
    both = post(
        client, submission(modal, {AMOUNT_BLOCK: "9000", ARGUMENT_BLOCK + "note": "invoice 7, part"})
    ).json()
    assert both["response_action"] == "update", both
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "amount": 9000, "note": "invoice 7, part"}]


def test_without_a_bot_token_or_a_trigger_edit_links_to_the_dashboard(
    client: TestClient, db: Database, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, approval = waiting(db, pay_registry(calls))
    link = f"http://localhost:8501/approval?approval={approval.id}"
    no_token = post(client, press(approval.id, EDIT_ACTION, trigger_id=TRIGGER)).json()
    assert "Edit this request in the dashboard" in no_token["text"] and link in no_token["text"]
    with loopback_server() as slack:
        monkeypatch.setenv("SLACK_API_URL", f"{slack.url}/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        no_trigger = post(client, press(approval.id, EDIT_ACTION)).json()
        slack.answers["/api/views.open"] = {"ok": False, "error": "expired_trigger_id"}
        expired = post(client, press(approval.id, EDIT_ACTION, trigger_id=TRIGGER)).json()
    assert link in no_trigger["text"] and link in expired["text"]
    assert "could not open" in expired["text"]
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_edit_is_refused_to_someone_not_asked(
    client: TestClient, db: Database, calls: Calls, slack: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, approval = waiting(db, pay_registry(calls))
    modal = open_modal(client, slack, approval.id)
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({"eve@example.com": FINANCE_SLACK}))
    refused = post(client, press(approval.id, EDIT_ACTION, trigger_id="T-2")).json()
    assert "eve@example.com is not an approver" in refused["text"]
    assert len([r for r in slack.requests if r[1] == "/api/views.open"]) == 1
    submitted = post(client, submission(modal, {ARGUMENT_BLOCK + "note": "mine"})).json()
    assert submitted["response_action"] == "errors"
    assert "not an approver" in " ".join(submitted["errors"].values())
    assert ApprovalEngine(db).responses(approval.id) == []


def test_a_modal_opened_on_another_call_is_refused(
    client: TestClient, db: Database, calls: Calls, slack: Recorder
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    modal = open_modal(client, slack, approval.id)
    stale = post(client, submission(modal, {ARGUMENT_BLOCK + "note": "x"}, {"digest": "0" * 64})).json()
    assert stale["response_action"] == "errors"
    assert "changed since this form opened" in " ".join(stale["errors"].values())
    run(db, registry)
    assert calls.of("pay") == []


def test_unparsable_input_is_refused_under_its_field(
    client: TestClient, db: Database, calls: Calls, slack: Recorder
) -> None:
    _, approval = waiting(db, pay_registry(calls))
    modal = open_modal(client, slack, approval.id)
    emptied = post(client, submission(modal, {ARGUMENT_BLOCK + "amount": None})).json()
    assert emptied["response_action"] == "errors"
    assert "cannot be removed" in emptied["errors"][ARGUMENT_BLOCK + "amount"]
    unknown = post(client, submission(modal, {ARGUMENT_BLOCK + "iban": "DE00"})).json()
    assert "pay has no argument named 'iban'" in " ".join(unknown["errors"].values())
    assert ApprovalEngine(db).responses(approval.id) == []


def test_socket_mode_answers_a_submission_in_its_ack(
    client: TestClient, db: Database, calls: Calls, slack: Recorder
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    modal = open_modal(client, slack, approval.id)
    ack = handle_socket_request(
        db, "interactive", submission(modal, {ARGUMENT_BLOCK + "note": "invoice 7, net 30"})
    )
    assert ack is not None and ack["response_action"] == "update"
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "note": "invoice 7, net 30"}]


def test_a_budget_gate_without_a_call_asks_only_the_amount(
    client: TestClient, db: Database, slack: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.gateway.conftest import BOSS, waiting_workflow

    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({BOSS: FINANCE_SLACK}))
    _, approval = waiting_workflow(db, {"type": "budget", "context_data": {"amount": 500, "currency": "EUR"}})
    modal = open_modal(client, slack, approval.id)
    assert list(inputs(modal)) == [AMOUNT_BLOCK, COMMENT_BLOCK]
    assert "five hundred euros" in inputs(modal)[AMOUNT_BLOCK]["hint"]["text"]
    done = post(client, submission(modal, {AMOUNT_BLOCK: "300"})).json()
    assert done["response_action"] == "update", done
    decided = ApprovalEngine(db).get(approval.id)
    assert (decided.status, decided.decision_data["approved_amount"]) == ("modified", 300)


# -- "approve, and allow calls like this" in the modal ---------------------------------


def ticked(modal: dict[str, Any], days: str | None, when: str | None) -> dict[str, Any]:
    """The modal submitted with the standing rule's option ticked."""
    sent = submission(modal, {ALLOW_DAYS_BLOCK: days, ALLOW_WHEN_BLOCK: when})
    values = sent["view"]["state"]["values"]
    values[ALLOW_BLOCK] = {
        "value": {"type": "checkboxes", "selected_options": [{"value": "allow", "text": {"text": "Approve"}}]}
    }
    return sent


def test_a_policy_manager_approves_and_allows_calls_like_this_from_the_modal(
    client: TestClient, db: Database, calls: Calls, slack: Recorder
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    add_user(db, FINANCE, role="admin")
    modal = open_modal(client, slack, approval.id)
    fields = inputs(modal)
    assert {ALLOW_BLOCK, ALLOW_DAYS_BLOCK, ALLOW_WHEN_BLOCK} <= set(fields)
    assert "args.amount <= 12500" in fields[ALLOW_WHEN_BLOCK]["element"]["placeholder"]["text"]
    refused = post(client, ticked(modal, "7", "args.amount <")).json()
    assert refused["response_action"] == "errors"
    assert "not a valid expression" in refused["errors"][ALLOW_WHEN_BLOCK]
    assert ApprovalEngine(db).responses(approval.id) == []  # the vote and the rule, or neither
    answered = post(client, ticked(modal, "7", "args.amount <= 13000")).json()
    assert answered["response_action"] == "update", answered
    assert "Calls like this are allowed for 7 days" in answered["view"]["blocks"][0]["text"]["text"]
    run(db, registry)
    assert calls.of("pay") == [PROPOSED]
    assert released(db, registry, 12000) and calls.of("pay")[-1] == {**PROPOSED, "amount": 12000}
    assert not released(db, registry, 14000) and len(calls.of("pay")) == 2
    [rule] = standing_rules.list_rules(db, FINANCE)
    assert (rule["condition"], rule["source_approval_id"], rule["uses"]) == (
        "args.amount <= 13000",
        approval.id,
        1,
    )


def test_the_option_is_not_offered_to_an_approver_and_a_crafted_one_is_refused(
    client: TestClient, db: Database, calls: Calls, slack: Recorder
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    add_user(db, FINANCE, role="approver")
    modal = open_modal(client, slack, approval.id)
    assert not {ALLOW_BLOCK, ALLOW_DAYS_BLOCK, ALLOW_WHEN_BLOCK} & set(inputs(modal))
    refused = post(client, ticked(modal, "90", None)).json()
    assert refused["response_action"] == "errors"
    assert "policies:manage" in " ".join(refused["errors"].values())
    assert set(refused["errors"]) <= set(inputs(modal))
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    assert ApprovalEngine(db).responses(approval.id) == []
    run(db, registry)
    assert calls.of("pay") == []
