"""An approved amount on a request that is not a budget is refused, through every channel.

Only a budget's answer lowers what runs (``approved_amount``). On a binary or
form request that guards a call, ``{"approved_amount": 100}`` was recorded
(``decision_data`` said 100, REST answered 200 ``approved``) while the tool
received the 12500 shown: the record and what ran disagreed. Now the engine
refuses it by name (``InvalidResponse``, the Invalid kind: REST and the inbound
webhook 422, the CLI exit 2, an error on the email page, the Slack modal, Gradio
and the dashboard), nothing is recorded and the tool does not run; the call as
shown is still approved by a plain approval. A form's own field named
``approved_amount`` on a request that guards no call is just that field.

On SQLite and PostgreSQL (the ``db`` fixture); each test asserts what the
recording ``pay`` tool received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import components.approvals
from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.base.errors import InvalidResponse
from core.channels.slack import AMOUNT_BLOCK
from core.demo.scenarios import DEMO_PASSWORD
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from gateway.approver_answers import answer, details
from tests.acceptance.core.conftest import cli
from tests.helpers.approved_calls import (
    FINANCE,
    PROPOSED,
    REQUESTER,
    nothing_recorded_and_nothing_ran,
    pay_registry,
    run,
    waiting,
)
from tests.helpers.engine import Calls
from tests.integration.gateway.conftest import token_for, waiting_workflow
from tests.integration.gateway.loopback import Recorder, loopback_server
from tests.integration.gateway.test_approved_calls_email import CONFIRM, Form
from tests.integration.gateway.test_approved_calls_slack import FINANCE_SLACK, open_modal, post, submission
from tests.integration.gateway.test_slack import SECRET as SLACK_SECRET
from tests.integration.gateway.test_webhooks_in import SECRET as WEBHOOK_SECRET
from tests.integration.gateway.test_webhooks_in import URL as WEBHOOK_URL
from tests.integration.gateway.test_webhooks_in import signed as webhook_signed

TYPES = ["binary", "form"]
LOWER = {"approved_amount": 100}
REFUSAL = "approved_amount: only a budget request takes an approved amount"


@pytest.fixture(autouse=True)
def channel_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "gateway-tests-link-secret")
    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_IN_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SLACK_SECRET)
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({FINANCE: FINANCE_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """The loopback Slack Web API the real WebClient talks to, with a bot token."""
    with loopback_server() as server:
        monkeypatch.setenv("SLACK_API_URL", f"{server.url}/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        yield server


# -- the engine: the one check every channel goes through ------------------------------------


@pytest.mark.parametrize("approval_type", TYPES)
@pytest.mark.parametrize("decision", ["modify", "approve"])
def test_the_engine_refuses_an_amount_on_a_guarded_call_that_is_no_budget(
    db: Database, calls: Calls, approval_type: str, decision: str
) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    with pytest.raises(InvalidResponse, match=REFUSAL) as refused:
        ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, decision, LOWER, comment="only 100")
    assert refused.value.problems == [
        f"{REFUSAL}; approving this {approval_type} request runs pay with the arguments shown, so an "
        'amount here would change nothing: change the call\'s arguments instead ({"arguments": {...}}), '
        "or reject it"
    ]
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id, decision_data={})


def test_an_amount_beside_an_edit_is_refused_too(db: Database, calls: Calls) -> None:
    """The edit would run 100; the record would also say "up to 100": one way to say it."""
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    with pytest.raises(InvalidResponse, match=REFUSAL):
        ApprovalEngine(db).respond_to_approval(
            approval.id, FINANCE, "modify", {"arguments": {"amount": 100}, **LOWER}
        )
    assert ApprovalEngine(db).responses(approval.id) == []
    decided = ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "modify", {"arguments": {"amount": 100}}
    )
    assert decided.status == "modified"
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "amount": 100}]


def test_a_form_field_of_that_name_guarding_a_call_is_refused(db: Database, calls: Calls) -> None:
    """A form's own field named approved_amount would read as "approved up to N" beside a
    call that runs as shown: refused on a request that guards a call."""
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "form", form_fields=[{"name": "approved_amount", "type": "number"}])
    with pytest.raises(InvalidResponse, match=REFUSAL):
        ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "approve", LOWER)
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id, decision_data={})


def test_a_gate_takes_an_amount_only_when_its_form_asks_for_one(db: Database) -> None:
    from tests.integration.gateway.conftest import BOSS

    add_user(db, BOSS, role="approver")
    engine = ApprovalEngine(db)
    _, plain = waiting_workflow(db, {"type": "binary"})
    with pytest.raises(
        InvalidResponse, match=f"{REFUSAL}, and this binary request's answer has no such field"
    ):
        engine.respond_to_approval(plain.id, BOSS, "approve", LOWER)
    assert engine.responses(plain.id) == []
    fields = [{"name": "approved_amount", "type": "number"}, {"name": "reason", "type": "string"}]
    _, asking = waiting_workflow(db, {"type": "form", "form_fields": fields})
    decided = engine.respond_to_approval(asking.id, BOSS, "approve", {**LOWER, "reason": "ok"})
    assert (decided.status, decided.decision_data) == ("approved", {**LOWER, "reason": "ok"})


# -- each channel --------------------------------------------------------------------------------


@pytest.mark.parametrize("approval_type", TYPES)
def test_rest_answers_422_and_records_nothing(db: Database, calls: Calls, approval_type: str) -> None:
    from gateway.app import create_app

    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    with TestClient(create_app(db, approver_ui=False)) as client:
        response = client.post(
            f"/api/approvals/{approval.id}/respond",
            json={"decision": "modify", "data": LOWER, "comment": "only 100"},
            headers=token_for(db, FINANCE),
        )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "InvalidResponse"
    assert [p.startswith(REFUSAL) for p in body["problems"]] == [True], body
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id, decision_data={})


def test_the_inbound_webhook_answers_422_and_records_nothing(db: Database, calls: Calls) -> None:
    from gateway.app import create_app

    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    add_user(db, FINANCE, role="approver")
    body = json.dumps({"approval_id": approval.id, "decision": "modify", "approver": FINANCE, "data": LOWER})
    with TestClient(create_app(db, approver_ui=False)) as client:
        response = client.post(WEBHOOK_URL, content=body, headers=webhook_signed(body, msg_id="msg_amount"))
    assert response.status_code == 422, response.text
    assert any(p.startswith(REFUSAL) for p in response.json()["problems"])
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id, decision_data={})


@pytest.mark.timeout(300)
def test_the_cli_exits_2_and_records_nothing(db: Database, db_url: str, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    add_user(db, FINANCE, role="approver")
    args = ["approvals", "respond", approval.id, "--decision", "modify", "--as", FINANCE]
    done = cli(db_url, *args, "--data", json.dumps(LOWER), ok=False)
    assert done.returncode == 2, done.stderr
    assert REFUSAL in done.stderr
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id, decision_data={})


def test_the_email_page_refuses_a_crafted_amount_and_says_why(db: Database, calls: Calls) -> None:
    """The page offers no amount on a binary request; a crafted one is refused in words
    shown above the form (not under an amount field the page does not draw)."""
    from gateway.app import create_app

    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    token = make_link_token(approval.id, FINANCE, "approve")
    with TestClient(create_app(db, approver_ui=False)) as client:
        form = Form(client.get(CONFIRM, params={"token": token}).text).fields
        assert "approved_amount" not in form
        form.update(approved_amount="100", decision="approve")
        done = client.post(CONFIRM, data=form)
        assert done.status_code == 422, done.text
        assert "Your answer was not recorded" in done.text
        assert "approved_amount: only a budget request takes an approved amount" in done.text
        # The link was not spent: the page opens again.
        assert client.get(CONFIRM, params={"token": token}).status_code == 200
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id, decision_data={})


def test_a_slack_modal_refuses_a_crafted_amount(db: Database, calls: Calls, slack: Recorder) -> None:
    from gateway.app import create_app

    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    add_user(db, FINANCE, role="approver")
    with TestClient(create_app(db, approver_ui=False)) as client:
        modal = open_modal(client, slack, approval.id)
        assert AMOUNT_BLOCK not in {b.get("block_id") for b in modal["blocks"]}
        body = post(client, submission(modal, {AMOUNT_BLOCK: "100"})).json()
    assert body["response_action"] == "errors", body
    assert any(REFUSAL in text for text in body["errors"].values()), body
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id, decision_data={})


@pytest.mark.parametrize("approval_type", TYPES)
def test_gradio_refuses_an_amount_in_the_answer(db: Database, calls: Calls, approval_type: str) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    add_user(db, FINANCE, role="approver")
    details(db, FINANCE, approval.id)
    message = answer(db, FINANCE, approval.id, "Approve with changes", json.dumps(LOWER), "only 100")
    assert message.startswith("**Refused:**") and REFUSAL in message.replace("\\", ""), message
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id, decision_data={})


def test_the_dashboard_refuses_a_crafted_amount(
    db: Database, db_url: str, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.dashboard.conftest import _app_over
    from tests.integration.dashboard.test_approved_calls_page import errors, open_approval

    add_user(db, FINANCE, role="approver", password=DEMO_PASSWORD)
    add_user(db, REQUESTER, role="approver", password=DEMO_PASSWORD)
    registry = pay_registry(calls)
    with _app_over(monkeypatch, db_url):
        workflow_id, approval = waiting(db, registry)
        at = open_approval(FINANCE, approval.id)
        # No input can hold it (the page asks no amount of a binary request): the answer is crafted.
        monkeypatch.setattr(components.approvals, "call_edit", lambda view, drawn: dict(LOWER))
        at.text_input(key="approval.edit.note").input("changed, so the edit is sent")
        at.button(key="approval.modify").click().run()
        text = errors(at)
        assert "Nothing was recorded. The answer was refused" in text
        assert "only a budget request takes an approved amount" in text.replace("\\", ""), text
    assert ops.get_workflow(db, workflow_id).status == "waiting_approval"
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id, decision_data={})
