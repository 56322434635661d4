"""Bounded input: bodies too large or nested too deep are refused with a 4xx that names
the limit, before anything parses them, and the gateway goes on answering.

REST definitions nested 500 and 900 levels deep, bodies nested 10,000 deep
(with and without a Content-Type), 10 MB bodies (declared, and chunked
without a length), ``COUNTERSIGN_MAX_BODY`` lowered; Slack payloads with
``user`` as a string, nested 5,000 deep or missing what Slack always sends
(400); inbound webhooks nested 10,000 deep, signed or not, whatever their
Content-Type; the Gradio API's bodies and an answer nested inside a JSON
string. After each attempt the workflow listing still answers 200 and no
vote was written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.approvals.presentation import request_view
from core.engine import workflows as ops
from core.store.db import Database
from gateway.app import create_app
from gateway.approver_answers import answer
from gateway.hardening import DEFAULT_MAX_BODY, MAX_BODY_ENV
from tests.helpers.browser import sign_in
from tests.integration.gateway.conftest import BOSS, token_for
from tests.integration.gateway.test_slack import BOSS_SLACK, button, signed
from tests.integration.gateway.test_webhooks_in import SECRET as WEBHOOK_SECRET
from tests.integration.gateway.test_webhooks_in import signed as webhook_signed
from tests.reliability.report import AttackTally, record_attacks
from tests.reliability.security_setup import PASSWORD, STARTER, parked

LEVELS = "64 levels"
TEN_MB = 10 * 1024 * 1024


@pytest.fixture(autouse=True)
def channels_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "slack-signing-secret-for-tests")
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({BOSS: BOSS_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_IN_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")
    monkeypatch.delenv(MAX_BODY_ENV, raising=False)


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def definition_nested(depth: int) -> str:
    """A workflow whose one tool step's args nest ``depth`` levels deep."""
    return (
        '{"definition": {"name": "Deep", "steps": [{"name": "a", "type": "tool", '
        f'"tool": "noop", "args": {{"x": {nested(depth)}}}}}]}}}}'
    )


def names_the_limit(response: Any, *words: str) -> bool:
    """A 4xx whose body says which limit was passed."""
    return 400 <= response.status_code < 500 and all(w in response.text for w in words)


def finish(request: pytest.FixtureRequest, tally: AttackTally) -> None:
    record_attacks(request, tally)
    assert tally.attempts > 0
    assert tally.refused == tally.attempts, tally.failures


def test_deep_and_large_rest_bodies_are_refused_naming_the_limit(
    request: pytest.FixtureRequest, db: Database, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tally = AttackTally("Bounded input: REST bodies nested deep or too large")
    auth = token_for(db, STARTER, role="admin")
    json_headers = {**auth, "Content-Type": "application/json"}
    limit = str(DEFAULT_MAX_BODY)

    def listing_ok() -> bool:
        return client.get("/api/workflows", headers=auth).status_code == 200

    attempts: dict[str, tuple[str | bytes, dict[str, str], tuple[str, ...]]] = {
        "definition nested 500 deep": (definition_nested(500), json_headers, (LEVELS,)),
        "definition nested 900 deep": (definition_nested(900), json_headers, (LEVELS,)),
        "body nested 10,000 deep": (nested(10_000), json_headers, (LEVELS,)),
        "body nested 10,000 deep, no Content-Type": (nested(10_000), auth, (LEVELS,)),
        "10 MB definition": (
            '{"definition": {"name": "' + "x" * TEN_MB + '", "steps": []}}',
            json_headers,
            (limit, MAX_BODY_ENV),
        ),
    }
    for what, (body, headers, words) in attempts.items():
        response = client.post("/api/workflows", content=body, headers=headers)
        tally.check(names_the_limit(response, *words) and listing_ok(), what)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"definition": {"name": "'
        for _ in range(11):
            yield b"x" * (1024 * 1024)
        yield b'"}}'

    chunked = client.post("/api/workflows", content=chunks(), headers=json_headers)
    tally.check(
        names_the_limit(chunked, limit, MAX_BODY_ENV) and listing_ok(), "10 MB chunked, no Content-Length"
    )
    monkeypatch.setenv(MAX_BODY_ENV, "2048")
    small = client.post("/api/workflows", content=definition_nested(2) + " " * 4096, headers=json_headers)
    tally.check(
        names_the_limit(small, "2048", MAX_BODY_ENV) and listing_ok(), "4 KB with COUNTERSIGN_MAX_BODY=2048"
    )
    monkeypatch.delenv(MAX_BODY_ENV)
    # Within the limits a definition still loads.
    fine = client.post(
        "/api/workflows",
        headers=json_headers,
        content=json.dumps({"definition": {"name": "Fine", "steps": [{"name": "a", "type": "checkpoint"}]}}),
    )
    assert fine.status_code == 201, fine.text
    finish(request, tally)


def slack_post(client: TestClient, payload_text: str) -> Any:
    body = urlencode({"payload": payload_text})
    return client.post("/slack/interactivity", content=body, headers=signed(body))


def test_malformed_slack_payloads_answer_400(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Bounded input: malformed Slack payloads")
    _, approval = parked(db)
    action = {
        "action_id": "countersign_approve",
        "value": button(approval.id),
        "type": "button",
        "action_ts": "1765000000.000100",
    }
    good = {"type": "block_actions", "user": {"id": BOSS_SLACK}, "actions": [action]}
    attempts: dict[str, tuple[str, tuple[str, ...]]] = {
        "user as a string": (json.dumps({**good, "user": BOSS_SLACK}), ("payload.user",)),
        "user id as a number": (json.dumps({**good, "user": {"id": 7}}), ("payload.user.id",)),
        "no user": (json.dumps({k: v for k, v in good.items() if k != "user"}), ("payload.user",)),
        "nested 5,000 deep": (json.dumps(good)[:-1] + ', "x": ' + nested(5000) + "}", (LEVELS,)),
        "actions not a list": (json.dumps({**good, "actions": "approve"}), ("payload.actions",)),
        "no actions": (json.dumps({k: v for k, v in good.items() if k != "actions"}), ("payload.actions",)),
        "action without a value": (
            json.dumps({**good, "actions": [{k: v for k, v in action.items() if k != "value"}]}),
            ("value",),
        ),
        "action without action_ts": (
            json.dumps({**good, "actions": [{k: v for k, v in action.items() if k != "action_ts"}]}),
            ("action_ts",),
        ),
        "action as a string": (json.dumps({**good, "actions": ["countersign_approve"]}), ("action_id",)),
        "view as a string": (
            json.dumps({"type": "view_submission", "user": {"id": BOSS_SLACK}, "view": "countersign_edit"}),
            ("payload.view",),
        ),
        "payload a list": (json.dumps([good]), ("not a JSON object",)),
        "payload not JSON": ("{'type': 'block_actions'", ("not valid JSON",)),
        "type a number": (json.dumps({**good, "type": 3}), ("payload.type",)),
    }
    for what, (payload, words) in attempts.items():
        response = slack_post(client, payload)
        tally.check(
            response.status_code == 400
            and all(w in response.text for w in words)
            and not ApprovalEngine(db).responses(approval.id),
            what,
        )
    # The same click, well formed, still decides.
    assert slack_post(client, json.dumps(good)).json()["text"].startswith("You approved")
    finish(request, tally)


def test_deep_and_large_webhook_bodies_are_refused(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Bounded input: inbound webhooks nested deep or too large")
    _, approval = parked(db)
    deep = (
        '{"approval_id": "'
        + approval.id
        + '", "decision": "approve", "approver": "'
        + BOSS
        + '", "data": {"x": '
        + nested(10_000)
        + "}}"
    )
    auth = token_for(db, BOSS)
    attempts: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
        "signed, nested 10,000 deep": (deep, webhook_signed(deep, msg_id="msg_deep"), (LEVELS,)),
        "signed, nested 10,000 deep, as text/plain": (
            deep,
            {**webhook_signed(deep, msg_id="msg_deep2"), "Content-Type": "text/plain"},
            (LEVELS,),
        ),
        "API token, nested 10,000 deep, as text/plain": (
            deep,
            {**auth, "Content-Type": "text/plain"},
            (LEVELS,),
        ),
        "signed, 10 MB": (
            '{"comment": "' + "x" * TEN_MB + '"}',
            {"Content-Type": "application/json", "webhook-id": "msg_big"},
            (MAX_BODY_ENV,),
        ),
    }
    for what, (body, headers, words) in attempts.items():
        response = client.post("/webhooks/inbound", content=body, headers=headers)
        tally.check(names_the_limit(response, *words) and not ApprovalEngine(db).responses(approval.id), what)
    finish(request, tally)


def test_deep_and_large_gradio_bodies_are_refused(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("Bounded input: Gradio API bodies and answers nested deep")
    _, approval = parked(db)
    sign_in(client, BOSS, PASSWORD)
    run = "/approve/gradio_api/run/approve"
    deep_body = '{"data": [' + nested(10_000) + "]}"
    response = client.post(run, content=deep_body, headers={"Content-Type": "application/json"})
    tally.check(names_the_limit(response, LEVELS), "Gradio event nested 10,000 deep")
    big = client.post(
        run,
        content='{"data": ["' + "x" * (2 * DEFAULT_MAX_BODY) + '"]}',
        headers={"Content-Type": "application/json"},
    )
    tally.check(names_the_limit(big, MAX_BODY_ENV), "Gradio event of 2 MB")
    # Inside a JSON string the middleware sees no brackets: the answer is measured itself.
    deep_answer = '{"x": ' + nested(5000) + "}"
    over_http = client.post(run, json={"data": [approval.id, deep_answer, "", "", None]})
    message = over_http.json()["data"][0] if over_http.status_code == 200 else ""
    tally.check(
        message.startswith("**Refused:**") and LEVELS in message,
        "answer JSON nested 5,000 deep, over Gradio's API",
    )
    direct = answer(db, BOSS, approval.id, "Approve", "{}", "", '{"a": ' + nested(5000) + "}")
    tally.check(direct.startswith("**Refused:**") and LEVELS in direct, "call arguments nested 5,000 deep")
    tally.check(not ApprovalEngine(db).responses(approval.id), "no vote written by any of them")
    finish(request, tally)


def test_a_typed_argument_nested_deep_is_refused_under_its_field(
    request: pytest.FixtureRequest, db: Database, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON argument typed on the email page (or in Slack's modal) is measured before
    it is parsed (core.approvals.edits), and refused under its field."""
    from core.approvals.edits import read_inputs
    from core.approvals.links import make_link_token
    from core.engine.tools import ToolRegistry
    from core.runtime import build_runner
    from tests.helpers.browser import answer_form
    from tests.reliability.security_setup import account

    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "reliability-link-secret-0123456789")
    tally = AttackTally("Bounded input: typed JSON arguments nested deep")
    registry = ToolRegistry()

    @registry.register("ship")
    def ship(items: list[Any], idempotency_key: str) -> dict[str, Any]:
        """Ship the items."""
        return {"shipped": len(items)}

    account(db, STARTER, "admin")
    account(db, BOSS)
    workflow = ops.create_workflow(
        db,
        {
            "name": "Ship",
            "steps": [
                {
                    "name": "ship",
                    "type": "tool",
                    "tool": "ship",
                    "requires_approval": True,
                    "args": {"items": [1, 2]},
                    "approval_config": {"requested_from": BOSS, "channels": []},
                }
            ],
        },
        created_by=STARTER,
    )
    build_runner(db, registry=registry).run_until_idle(max_seconds=60)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow.id)
    deep = nested(5000)
    token = make_link_token(approval.id, BOSS, "approve")
    page = client.post("/email/confirm", data=answer_form(token, **{"arg.items": deep}))
    tally.check(
        page.status_code == 422 and LEVELS in page.text and not ApprovalEngine(db).responses(approval.id),
        "email page argument field",
    )
    view = request_view(approval, [])
    _, problems = read_inputs(view, {"items": deep})
    tally.check(LEVELS in problems.get("items", ""), "Slack modal / any channel's input")
    finish(request, tally)
