"""An integer longer than Python reads from text (4300 digits) is refused by its place,
like NaN, depth and size are (SQLite and PostgreSQL).

``json.loads`` refuses such a number with a ValueError that names no place, and FastAPI
answered every body holding one with a bare 400 ``There was an error parsing the body``
and no problems; the CLI printed Python's own ``use sys.set_int_max_str_digits()`` and
exited 1 as for a crash. Now REST (a workflow's ``input``, an answer's ``data``), the
inbound webhook (signed, or with a token, whatever its Content-Type) and the CLI's JSON
options name the place and the limit, and nothing is written.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from core.approvals.engine import ApprovalEngine
from core.base.storable import json_integer_too_long, load_json
from core.store.db import Database
from core.store.tables import ApprovalResponse, Workflow
from tests.acceptance.core.conftest import ROOT, cli
from tests.helpers.approved_calls import FINANCE, pay_registry, waiting
from tests.helpers.engine import Calls
from tests.integration.gateway.conftest import REQUESTER, definition, token_for

LONG = "1" + "0" * 5000  # 5,001 digits
LIMIT = "9" * 4300  # the longest integer read from text
SECRET = "whsec_" + base64.b64encode(b"inbound-webhook-secret-for-tests!").decode()


def signed(body: str) -> dict[str, str]:
    signature = Webhook(SECRET).sign("msg_1", datetime.now(UTC), body)
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }


def post(
    client: TestClient, path: str, body: str, headers: dict[str, str], kind: str = "application/json"
) -> Any:
    return client.post(path, content=body.encode(), headers={**headers, "Content-Type": kind})


def workflow_count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Workflow)) or 0


@pytest.mark.parametrize(
    ("input_text", "where"),
    [
        (f'{{"x": {LONG}}}', "input.x"),
        (f'{{"x": [1, {{"y": -{LONG}}}]}}', "input.x[1].y"),
    ],
)
def test_a_workflow_input_holding_one_is_refused_by_its_place(
    client: TestClient, db: Database, input_text: str, where: str
) -> None:
    headers = token_for(db, REQUESTER, role="service")
    body = f'{{"definition": {json.dumps(definition())}, "input": {input_text}, "start": false}}'
    response = post(client, "/api/workflows", body, headers)
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "BodyIntegerTooLong",
        "message": f"The JSON body holds an integer longer than 4300 digits, the limit, at {where}.",
        "problems": [f"{where}: an integer longer than 4300 digits"],
    }
    assert workflow_count(db) == 0


def test_numbers_up_to_the_limit_and_long_digit_strings_are_accepted(
    client: TestClient, db: Database
) -> None:
    headers = token_for(db, REQUESTER, role="service")
    input_text = f'{{"n": {LIMIT}, "s": "{LONG}", "f": 1.{LONG}}}'
    body = f'{{"definition": {json.dumps(definition())}, "input": {input_text}, "start": false}}'
    response = post(client, "/api/workflows", body, headers)
    assert response.status_code == 201, response.text
    assert response.json()["input_data"]["n"] == int(LIMIT)
    assert response.json()["input_data"]["s"] == LONG


def test_an_answer_holding_one_is_refused_and_nothing_is_recorded(
    client: TestClient, db: Database, calls: Calls
) -> None:
    _, approval = waiting(db, pay_registry(calls))
    body = f'{{"decision": "reject", "data": {{"x": {LONG}}}}}'
    response = post(client, f"/api/approvals/{approval.id}/respond", body, token_for(db, FINANCE))
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == ["data.x: an integer longer than 4300 digits"]
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ApprovalResponse)) == 0


@pytest.mark.parametrize("way", ["signed", "token", "token as text/plain"])
def test_an_inbound_webhook_holding_one_is_refused_by_its_place(
    client: TestClient, db: Database, calls: Calls, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_IN_SECRET", SECRET)
    _, approval = waiting(db, pay_registry(calls))
    head = json.dumps({"approval_id": approval.id, "decision": "approve", "approver": FINANCE})
    body = head[:-1] + f', "data": {{"n": {LONG}}}}}'
    if way == "signed":
        response = client.post("/webhooks/inbound", content=body, headers=signed(body))
    else:
        kind = "text/plain" if way.endswith("text/plain") else "application/json"
        response = post(client, "/webhooks/inbound", body, token_for(db, FINANCE), kind)
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == ["data.n: an integer longer than 4300 digits"]
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_the_cli_names_the_option_and_the_place(sqlite_url: str) -> None:
    deploy = str(ROOT / "core" / "demo" / "templates" / "deployment_pipeline.yaml")
    for option, command in (
        ("--input", ["workflow", "start", deploy, "--as", "x@y.z"]),
        ("--data", ["approvals", "respond", "some-id", "--decision", "approve", "--as", "x@y.z"]),
    ):
        refused = cli(sqlite_url, *command, option, f'{{"a": [1, {LONG}]}}', ok=False)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr == f"error: {option}.a[1]: an integer longer than 4300 digits.\n"


def test_the_scan_is_linear_and_reads_only_what_holds_a_long_run_of_digits() -> None:
    import time

    # A megabyte of 4,300-digit numbers: a regex of 4,301 digits took 20 s on it.
    text = "[" + ",".join([LIMIT] * 230) + "]"
    started = time.perf_counter()
    assert json_integer_too_long(text) is None
    assert time.perf_counter() - started < 0.5
    assert json_integer_too_long(f"[{LONG}]") == "(body)[0]: an integer longer than 4300 digits"
    assert json_integer_too_long(LONG) == "(body): an integer longer than 4300 digits"
    assert json_integer_too_long(f'{{"a": {LONG}', "payload") is None  # not JSON: its parser says so
    with pytest.raises(ValueError, match=r"^payload\.x: an integer longer than 4300 digits$"):
        load_json(f'{{"x": {LONG}}}', "payload")
