"""The Gradio approver UI at /approve: mounted, behind the gateway's sign-in,
answering through the engine."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.identity.users import add_user
from core.store.db import Database
from gateway.app import create_app
from gateway.approver_answers import answer, details, inbox, schema_defaults
from tests.helpers.browser import sign_in, sign_out
from tests.integration.gateway.conftest import BOSS, OTHER, waiting_workflow

PASSWORD = "correct horse battery"
BUDGET = {"type": "budget", "context_data": {"amount": 500, "currency": "EUR"}}


@pytest.fixture
def ui(db: Database) -> Iterator[TestClient]:
    add_user(db, BOSS, password=PASSWORD)
    with TestClient(create_app(db)) as test_client:
        yield test_client


def test_approve_needs_the_gateway_sign_in(ui: TestClient) -> None:
    first = ui.get("/approve", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=/approve/"
    assert ui.get("/approve/config").status_code == 401  # Gradio's own API refuses too
    wrong = sign_in(ui, BOSS, "nope", "/approve/")
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    off_site = sign_in(ui, BOSS, PASSWORD, "//evil.example", follow_redirects=False)
    assert off_site.status_code == 303 and off_site.headers["location"] == "/approve/"
    page = ui.get("/approve/")
    assert page.status_code == 200 and "gradio" in page.text.lower()
    config = ui.get("/approve/config").json()
    assert config["username"] == BOSS
    sign_out(ui)
    assert ui.get("/approve/config").status_code == 401


def test_a_forged_session_cookie_is_refused(ui: TestClient) -> None:
    ui.cookies.set("countersign_session", "eyJlbWFpbCI6ImJvc3NAZXhhbXBsZS5jb20ifQ.forged.sig")
    assert ui.get("/approve/config").status_code == 401
    assert ui.get("/approve", follow_redirects=False).status_code == 303


def test_inbox_details_and_a_budget_answer(db: Database) -> None:
    _, approval = waiting_workflow(db, BUDGET)
    assert inbox(db, OTHER) == []
    [(label, approval_id)] = inbox(db, BOSS)
    assert approval_id == approval.id and "budget" in label
    markdown, prefilled, schema = details(db, BOSS, approval.id)
    assert "Ship release &lt;b&gt;1.2&lt;/b&gt;" in markdown and "<b>" not in markdown
    assert json.loads(prefilled) == {"approved_amount": 500}
    assert schema["properties"]["approved_amount"]["maximum"] == 500

    too_much = answer(db, BOSS, approval.id, "Approve with changes", '{"approved_amount": 900}', "")
    assert too_much.startswith("**Refused:**") and "approved_amount" in too_much.replace("\\", "")
    not_json = answer(db, BOSS, approval.id, "Approve", "{oops", "")
    assert "not valid JSON" in not_json
    assert answer(db, OTHER, approval.id, "Approve", prefilled, "").startswith("**Refused:**")
    assert answer(db, None, approval.id, "Approve", prefilled, "") == "**Refused:** sign in first."
    assert ApprovalEngine(db).responses(approval.id) == []

    done = answer(db, BOSS, approval.id, "Approve with changes", '{"approved_amount": 300}', "cut")
    assert done == "**Recorded.** The request is now modified."
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.channel, vote.data, vote.comment) == ("gradio", {"approved_amount": 300}, "cut")
    assert inbox(db, BOSS) == []


def test_schema_defaults_fill_nested_objects() -> None:
    schema = {
        "type": "object",
        "properties": {
            "level": {"type": "string", "default": "low"},
            "notes": {"type": "string"},
            "limits": {"type": "object", "properties": {"max": {"type": "integer", "default": 3}}},
        },
    }
    assert schema_defaults(schema) == {"level": "low", "limits": {"max": 3}}


def test_the_gradio_events_act_as_the_signed_in_user(ui: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(db)
    run = "/approve/gradio_api/run"
    assert ui.post(f"{run}/inbox", json={"data": []}).status_code == 401
    sign_in(ui, BOSS, PASSWORD)
    greeting, choices = ui.post(f"{run}/inbox", json={"data": []}).json()["data"]
    assert BOSS in greeting.replace("\u2060", "") and [c[1] for c in choices["choices"]] == [approval.id]
    markdown, prefilled, _, arguments, amount = ui.post(
        f"{run}/details", json={"data": [approval.id]}
    ).json()["data"]
    assert "Ship release" in markdown and prefilled == "{}"
    assert (arguments, amount) == ("", None)  # a gate guarding no call: nothing to edit
    refused = ui.post(f"{run}/modify", json={"data": [approval.id, '{"x": 1}', "", "", None]}).json()["data"]
    assert "cannot be approved with changes" in refused[0]
    result = ui.post(
        f"{run}/approve", json={"data": [approval.id, prefilled, "via gradio", "", None]}
    ).json()["data"]
    assert result[0] == "**Recorded.** The request is now approved."
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.approver, vote.channel, vote.comment) == (BOSS, "gradio", "via gradio")
