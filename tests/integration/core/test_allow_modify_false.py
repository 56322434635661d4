"""``allow_modify: false`` holds for a request that guards a call, through every channel.

The check in the engine applied only when there was no call: on a tool step with
``requires_approval`` (or an agent's held call) an approver could change the arguments
or lower a budget's amount, and the changed call ran although the definition's author
said no changes. Now any change (an argument, an approved amount, a choice) is refused
by name (``InvalidResponse``: REST 422, CLI exit 2, each channel says why), nothing is
recorded, and no channel offers an edit for such a request (the email page, Slack's Edit
button, Gradio's and the dashboard's "Approve with changes").

On SQLite and PostgreSQL (the ``db`` fixture); each test asserts what the recording
``pay`` tool received, or that it did not run and nothing was recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.approvals.edits import editable
from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.approvals.presentation import request_view
from core.base.errors import InvalidResponse
from core.demo.scenarios import DEMO_PASSWORD
from core.identity.users import add_user
from core.store.db import Database
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
from tests.integration.gateway.test_approved_calls_slack import FINANCE_SLACK, post, press
from tests.integration.gateway.test_slack import SECRET as SLACK_SECRET

FIXED: dict[str, Any] = {"allow_modify": False}
REFUSAL = "allow_modify: false"
# (approval type, decision, data): each a change of what approving releases.
CHANGES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "edited_argument": ("binary", "modify", {"arguments": {"note": "to mallory"}}),
    "edited_argument_as_approve": ("binary", "approve", {"arguments": {"note": "to mallory"}}),
    "lowered_amount_argument": ("binary", "modify", {"arguments": {"amount": 1}}),
    "changed_choice": ("binary", "modify", {"arguments": {"currency": "EUR"}}),
    "budget_lowered": ("budget", "approve", {"approved_amount": 9000}),
    "budget_lowered_as_modify": ("budget", "modify", {"approved_amount": 9000}),
    "budget_argument_edit": ("budget", "modify", {"arguments": {"note": "to mallory"}}),
    "form_edit": ("form", "modify", {"arguments": {"note": "to mallory"}}),
    "modify_with_nothing": ("binary", "modify", {}),
}


@pytest.fixture(autouse=True)
def channel_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "gateway-tests-link-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SLACK_SECRET)
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({FINANCE: FINANCE_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    with loopback_server() as server:
        monkeypatch.setenv("SLACK_API_URL", f"{server.url}/api/")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        yield server


# -- the engine: the one check every channel goes through ------------------------------------


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_any_change_of_a_guarded_call_is_refused(db: Database, calls: Calls, case: str) -> None:
    approval_type, decision, data = CHANGES[case]
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type, **FIXED)
    with pytest.raises(InvalidResponse) as refused:
        ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, decision, data, comment="changed")
    assert any(REFUSAL in p for p in refused.value.problems), refused.value.problems
    named = [*(data.get("arguments") or {}), *(k for k in data if k != "arguments")] or ["decision"]
    for name in named:
        assert any(name in p for p in refused.value.problems), (name, refused.value.problems)
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id)


def test_the_full_amount_of_a_budget_may_still_be_approved_as_asked(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", **FIXED)
    decided = ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "approve", {"approved_amount": 12500}
    )
    assert decided.status == "approved"
    run(db, registry)
    assert calls.of("pay") == [PROPOSED]


def test_without_allow_modify_false_an_edit_still_runs(db: Database, calls: Calls) -> None:
    """The default is unchanged: a guarded call's approver may change its arguments."""
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    decided = ApprovalEngine(db).respond_to_approval(
        approval.id, FINANCE, "modify", {"arguments": {"note": "net 30"}}
    )
    assert decided.status == "modified"
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "note": "net 30"}]


def test_a_budget_gate_without_a_call_cannot_be_lowered(db: Database) -> None:
    from tests.integration.gateway.conftest import BOSS

    add_user(db, BOSS, role="approver")
    engine = ApprovalEngine(db)
    _, approval = waiting_workflow(
        db, {"type": "budget", "allow_modify": False, "context_data": {"amount": 500, "currency": "EUR"}}
    )
    with pytest.raises(InvalidResponse, match="approved_amount: .*allow_modify: false"):
        engine.respond_to_approval(approval.id, BOSS, "approve", {"approved_amount": 300})
    assert engine.responses(approval.id) == []
    decided = engine.respond_to_approval(approval.id, BOSS, "approve", {})
    assert decided.status == "approved"
    assert decided.decision_data is not None and decided.decision_data["approved_amount"] == 500


# -- each channel --------------------------------------------------------------------------------


def test_rest_answers_422_and_records_nothing(db: Database, calls: Calls) -> None:
    from gateway.app import create_app

    registry = pay_registry(calls)
    _, approval = waiting(db, registry, **FIXED)
    with TestClient(create_app(db, approver_ui=False)) as client:
        response = client.post(
            f"/api/approvals/{approval.id}/respond",
            json={"decision": "modify", "data": {"arguments": {"note": "to mallory"}}},
            headers=token_for(db, FINANCE),
        )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "InvalidResponse"
    assert any(REFUSAL in p and "note" in p for p in body["problems"]), body
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id)


@pytest.mark.timeout(300)
def test_the_cli_exits_2_and_records_nothing(db: Database, db_url: str, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", **FIXED)
    add_user(db, FINANCE, role="approver")
    args = ["approvals", "respond", approval.id, "--decision", "approve", "--as", FINANCE]
    done = cli(db_url, *args, "--data", json.dumps({"approved_amount": 9000}), ok=False)
    assert done.returncode == 2, done.stderr
    assert REFUSAL in done.stderr and "approved_amount" in done.stderr
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id)


@pytest.mark.parametrize("approval_type", ["binary", "budget"])
def test_no_channel_offers_an_edit(db: Database, calls: Calls, approval_type: str) -> None:
    """What every channel draws from (core.approvals.edits.editable)."""
    _, approval = waiting(db, pay_registry(calls), approval_type, **FIXED)
    engine = ApprovalEngine(db)
    assert not editable(request_view(engine.get(approval.id), engine.responses(approval.id)))
    _, other = waiting(db, pay_registry(calls), approval_type)
    assert editable(request_view(engine.get(other.id), engine.responses(other.id)))


@pytest.mark.parametrize("approval_type", ["binary", "budget"])
def test_the_email_page_offers_no_edit_and_refuses_a_crafted_one(
    db: Database, calls: Calls, approval_type: str
) -> None:
    from gateway.app import create_app

    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type, **FIXED)
    token = make_link_token(approval.id, FINANCE, "approve")
    with TestClient(create_app(db, approver_ui=False)) as client:
        html = client.get(CONFIRM, params={"token": token}).text
        form = Form(html).fields
        assert not any(k.startswith("arg.") for k in form), form
        assert "approved_amount" not in form
        assert "Change the call" not in html
        crafted = {"arg.note": "to mallory"} if approval_type == "binary" else {"approved_amount": "9000"}
        form.update(crafted, decision="approve")
        done = client.post(CONFIRM, data=form)
        assert done.status_code == 422, done.text
        assert "Your answer was not recorded" in done.text and REFUSAL in done.text
        assert client.get(CONFIRM, params={"token": token}).status_code == 200  # not spent
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id)


def test_slack_offers_no_edit_button_and_the_button_opens_nothing(
    db: Database, calls: Calls, slack: Recorder
) -> None:
    from core.channels.slack_blocks import EDIT_ACTION
    from gateway.app import create_app

    registry = pay_registry(calls)
    _, approval = waiting(db, registry, **FIXED)
    add_user(db, FINANCE, role="approver")
    from core.approvals.edits import editable as drawn_with_edit

    engine = ApprovalEngine(db)
    assert not drawn_with_edit(request_view(engine.get(approval.id), engine.responses(approval.id)))
    with TestClient(create_app(db, approver_ui=False)) as client:
        # A press of an Edit button from a crafted or earlier message opens no modal.
        response = post(client, press(approval.id, EDIT_ACTION, trigger_id="t-1"))
    assert [r for r in slack.requests if r[1] == "/api/views.open"] == []
    assert REFUSAL in response.text, response.text
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id)


def test_gradio_offers_no_approve_with_changes_and_refuses_an_edit(db: Database, calls: Calls) -> None:
    from gateway.approver_answers import answer, buttons, details

    registry = pay_registry(calls)
    _, approval = waiting(db, registry, **FIXED)
    add_user(db, FINANCE, role="approver")
    assert "modify" not in [decision for _, decision in buttons(db, FINANCE, approval.id)]
    details(db, FINANCE, approval.id)
    message = answer(
        db, FINANCE, approval.id, "Approve", "{}", "changed", json.dumps({**PROPOSED, "note": "to mallory"})
    )
    assert message.startswith("**Refused:**") and REFUSAL in message.replace("\\", ""), message
    nothing_recorded_and_nothing_ran(db, calls, registry, approval.id)


def test_the_dashboard_offers_no_edit(
    db: Database, db_url: str, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.dashboard.conftest import _app_over
    from tests.integration.dashboard.test_approved_calls_page import open_approval

    add_user(db, FINANCE, role="approver", password=DEMO_PASSWORD)
    add_user(db, REQUESTER, role="approver", password=DEMO_PASSWORD)
    registry = pay_registry(calls)
    with _app_over(monkeypatch, db_url):
        _, approval = waiting(db, registry, "budget", **FIXED)
        at = open_approval(FINANCE, approval.id)
        keys = [b.key for b in at.button]
        assert "approval.modify" not in keys and "approval.approve" in keys, keys
        assert not [t for t in at.text_input if str(t.key).startswith("approval.edit.")]
        assert not [n for n in at.number_input if "approved_amount" in str(n.key)]
        at.button(key="approval.approve").click().run()
    run(db, registry)
    assert calls.of("pay") == [PROPOSED]
