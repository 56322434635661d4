"""A lone UTF-16 surrogate in JSON (``"\\ud800"``): JSON text may spell one and
``json.loads`` makes it a string, but it is not Unicode text; no driver can
encode it and no page could print it. Every way in over REST refuses it with a
422 naming where it is, and writes nothing (before: a 500 with the workflow
committed behind it, or a workflow stored that REST could no longer read).
Raw JSON text is sent, as an attacker would: the test client's own encoder
would refuse the string before it left."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.approvals.engine import ApprovalEngine
from core.base.errors import LoneSurrogate
from core.engine import workflows as ops
from core.store.db import Database
from core.store.tables import ApprovalResponse, Workflow
from tests.helpers.approved_calls import FINANCE, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.integration.gateway.conftest import REQUESTER, definition, token_for

LONE = "\\ud800"  # as JSON text spells it


def post(client: TestClient, path: str, body: str, headers: dict[str, str]) -> Any:
    return client.post(path, content=body.encode(), headers={**headers, "Content-Type": "application/json"})


def workflow_count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Workflow)) or 0


@pytest.mark.parametrize(
    ("input_text", "where"),
    [
        (f'{{"note": "pay {LONE} now"}}', "input.note"),
        (f'{{"n{LONE}": 1}}', "input"),
        (f'{{"list": [1, ["{LONE}"]]}}', "input.list[1][0]"),
    ],
)
def test_a_workflow_started_with_one_is_refused_and_not_written(
    client: TestClient, db: Database, input_text: str, where: str
) -> None:
    import json

    headers = token_for(db, REQUESTER, role="service")
    body = f'{{"definition": {json.dumps(definition())}, "input": {input_text}}}'
    response = post(client, "/api/workflows", body, headers)
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert any(p.startswith(where) and "lone surrogate (\\ud800)" in p for p in problems), problems
    assert workflow_count(db) == 0


@pytest.mark.parametrize(
    "data_text",
    [
        f'{{"arguments": {{"note": "invoice {LONE}"}}}}',
        f'{{"why{LONE}": "because"}}',
    ],
)
def test_an_answer_holding_one_is_refused_and_the_tool_gets_nothing(
    client: TestClient, db: Database, calls: Calls, data_text: str
) -> None:
    registry = pay_registry(calls)
    workflow_id, approval = waiting(db, registry)
    body = f'{{"decision": "modify", "data": {data_text}, "comment": "ok"}}'
    response = post(client, f"/api/approvals/{approval.id}/respond", body, token_for(db, FINANCE))
    assert response.status_code == 422, response.text
    assert any("lone surrogate" in p for p in response.json()["problems"]), response.json()
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ApprovalResponse)) == 0
    run(db, registry)
    assert calls.of("pay") == []
    # The workflow still reads over REST.
    assert client.get(f"/api/workflows/{workflow_id}", headers=token_for(db, FINANCE)).status_code == 200


def test_a_comment_holding_one_is_refused(client: TestClient, db: Database, calls: Calls) -> None:
    _, approval = waiting(db, pay_registry(calls))
    body = f'{{"decision": "approve", "comment": "fine {LONE}"}}'
    response = post(client, f"/api/approvals/{approval.id}/respond", body, token_for(db, FINANCE))
    assert response.status_code == 422, response.text
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_a_lookup_holding_one_is_refused_by_name_not_by_the_driver(db: Database) -> None:
    # Nothing stored holds one (refused on the way in), and no driver can send one.
    with pytest.raises(LoneSurrogate, match="lone UTF-16 surrogate"):
        ops.list_workflows(db, search="deploy \ud800")
    with pytest.raises(LoneSurrogate):
        ApprovalEngine(db).get("ap\udc00")
