"""The Gradio approver UI at /approve: mounted, behind the gateway's sign-in,
answering through the engine; only the buttons that apply to a request, the
bounds of a number said as the engine applies them, and refusals that name a
field by its title, once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from core.approvals.engine import ApprovalEngine
from core.definitions.approval_schema import budget_schema
from core.identity.users import add_user
from core.store.db import Database
from gateway.app import create_app
from gateway.approver_answers import answer, details, inbox, schema_defaults
from gateway.approver_form import draw, form_fields
from tests.e2e.test_gradio_approver import drawn_for, signed_in
from tests.helpers.browser import sign_in, sign_out
from tests.integration.gateway.conftest import BOSS, OTHER, waiting_workflow
from tests.reliability.browser_sites import gateway_site

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
    assert too_much.startswith("**Refused:**") and "Approved amount (EUR)" in too_much, too_much
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
    markdown, prefilled, _, arguments, amount, shown = ui.post(
        f"{run}/details", json={"data": [approval.id]}
    ).json()["data"]
    assert "Ship release" in markdown and prefilled == "{}"
    assert (arguments, amount) == ("", None)  # a gate guarding no call: nothing to edit
    assert json.loads(shown) == [approval.id, 0, None]  # what it showed: level 1, no call
    refused = ui.post(f"{run}/modify", json={"data": [approval.id, '{"x": 1}', "", "", None]}).json()["data"]
    assert "cannot be approved with changes" in refused[0]
    assert ApprovalEngine(db).responses(approval.id) == []
    result = ui.post(
        f"{run}/approve", json={"data": [approval.id, prefilled, "via gradio", "", None]}
    ).json()["data"]
    assert result[0] == "**Recorded.** The request is now approved."
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.approver, vote.channel, vote.comment) == (BOSS, "gradio", "via gradio")


def test_approve_with_changes_on_a_yes_no_request_is_refused_once_in_words(
    ui: TestClient, db: Database
) -> None:
    """Over the HTTP API (the page does not offer the button): one sentence, said once,
    in the approver's terms rather than the engine's ("decision: binary approvals ...")."""
    _, approval = waiting_workflow(db)
    sign_in(ui, BOSS, PASSWORD)
    event = {"data": [approval.id, "{}", "", "", None]}
    [message, *_] = ui.post("/approve/gradio_api/run/modify", json=event).json()["data"]
    assert message.startswith("**Refused:**"), message
    assert message.count("cannot be approved with changes") == 1, message
    assert "approve or reject it" in message and "decision:" not in message, message
    assert ApprovalEngine(db).responses(approval.id) == []


def test_an_amounts_bounds_are_said_as_the_engine_applies_them() -> None:
    """A budget's approved amount must be more than 0: never "from 0 to 5000"."""
    [field] = form_fields(budget_schema(5000, "USD"))
    with gr.Blocks():
        widget = draw(field)
    assert isinstance(widget, gr.Number)
    assert widget.info == "Approve the requested amount or a lower one. Must be more than 0 and at most 5000."
    bounded = {"type": "object", "properties": {"n": {"type": "number", "exclusiveMinimum": 1, "maximum": 9}}}
    with gr.Blocks():
        assert draw(form_fields(bounded)[0]).info == "More than 1 and at most 9"  # type: ignore[union-attr]
    draft4 = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True}},
    }
    with gr.Blocks():
        assert draw(form_fields(draft4)[0]).info == "More than 0"  # type: ignore[union-attr]


def test_a_refused_amount_is_named_by_its_fields_title_once(db: Database) -> None:
    _, approval = waiting_workflow(db, BUDGET)
    message = answer(db, BOSS, approval.id, "Approve with changes", '{"approved_amount": 0}', "")
    assert message.startswith("**Refused:**"), message
    plain = message.replace("\\", "")
    assert plain.count("must be more than 0") == 1, message
    assert "Approved amount (EUR): must be more than 0" in plain, message
    assert "approved_amount" not in plain, message
    assert ApprovalEngine(db).responses(approval.id) == []


def _choose(page: Any, approval_id: str) -> None:
    page.locator("#cs-refresh").click()
    page.locator("#cs-choice input").click()
    page.get_by_role("option", name=re.compile(approval_id[:8])).click()
    drawn_for(page, approval_id)


@pytest.mark.browser
def test_only_the_buttons_that_apply_are_drawn(sqlite_db: Database, chromium: Any) -> None:
    """As on the dashboard: a yes/no request guarding no call has nothing to change (no
    "Approve with changes"); a budget has; a veto window's buttons are "Run now" and
    "Veto"; before a request is chosen there is nothing to click."""
    add_user(sqlite_db, BOSS, password=PASSWORD)
    _, yes_no = waiting_workflow(sqlite_db)
    _, budget = waiting_workflow(sqlite_db, BUDGET)
    _, veto = waiting_workflow(sqlite_db, {"mode": "veto", "window": "15m"})
    with gateway_site(sqlite_db) as gateway, signed_in(chromium, gateway, BOSS) as page:
        expect(page.locator("#cs-who")).to_contain_text("3 waiting")
        for name in ("approve", "modify", "reject"):
            expect(page.locator(f"#cs-{name}")).to_be_hidden()
        _choose(page, yes_no.id)
        expect(page.locator("#cs-approve")).to_have_text("Approve")
        expect(page.locator("#cs-reject")).to_have_text("Reject")
        expect(page.locator("#cs-modify")).to_be_hidden()
        _choose(page, budget.id)
        expect(page.locator("#cs-modify")).to_have_text("Approve with changes")
        expect(page.locator("#cs-approve")).to_be_visible()
        _choose(page, veto.id)
        expect(page.locator("#cs-approve")).to_have_text("Run now")
        expect(page.locator("#cs-reject")).to_have_text("Veto")
        expect(page.locator("#cs-modify")).to_be_hidden()
        drawn_for(page, veto.id).locator("#cs-reject").click()
        expect(page.locator("#cs-result")).to_contain_text("Recorded")
    assert ApprovalEngine(sqlite_db).get(veto.id).status == "rejected"
    assert [ApprovalEngine(sqlite_db).get(a.id).status for a in (yes_no, budget)] == ["pending"] * 2
