"""Answers from the Gradio approver and the REST API count only for what they were
given for (core.approvals.once), as Slack's, email links' and inbound webhooks' do.

A two-level budget request for a guarded ``pay`` call: finance and the admin
answer level 1, the admin alone level 2. The admin reads the request; finance
then passes level 1 with a changed note. The admin's answer, carrying what it
was read as (Gradio's page: ``issued_for``; REST: ``level`` and ``digest``), is
refused as out of date and nothing is recorded; given for the request as it is
now, it counts, and the tool receives the call the admin saw.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest
from gateway.approver_answers import answer, call_editor, issued_for
from tests.helpers.approved_calls import FINANCE, PROPOSED, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.integration.gateway.conftest import token_for

ADMIN = "admin@example.com"
LEVELS = [
    {"name": "team", "min_amount": 0, "approvers": [FINANCE, ADMIN]},
    {"name": "lead", "min_amount": 50, "approvers": [ADMIN]},
]
ESCROW = "invoice 7, pay to escrow"
OUTDATED = "which is at level 2 now: it decides nothing"


def two_levels(db: Database, calls: Calls) -> tuple[object, ApprovalRequest]:
    add_user(db, FINANCE, role="approver")
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, "budget", levels=LEVELS, requested_from=[FINANCE, ADMIN])
    return registry, approval


def finance_changes_the_note(db: Database, approval_id: str) -> None:
    engine = ApprovalEngine(db)
    engine.respond_to_approval(approval_id, FINANCE, "modify", {"arguments": {"note": ESCROW}}, channel="api")
    assert engine.get(approval_id).level == 1


def test_gradio_refuses_an_answer_from_a_page_drawn_before_the_call_changed(
    db: Database, calls: Calls
) -> None:
    registry, approval = two_levels(db, calls)
    add_user(db, ADMIN, role="admin")
    shown = issued_for(db, ADMIN, approval.id)  # the page's call_for
    editor, _ = call_editor(db, ADMIN, approval.id)
    assert json.loads(editor)["note"] == "invoice 7"
    finance_changes_the_note(db, approval.id)
    message = answer(db, ADMIN, approval.id, "Approve", "{}", "", "", None, issued_for=shown)
    assert message.startswith("**Refused:**") and OUTDATED in message, message
    assert "Choose the request again" in message
    assert [v.approver for v in ApprovalEngine(db).responses(approval.id)] == [FINANCE]
    # Chosen again: the page shows the call as it is now, and the answer counts.
    editor, _ = call_editor(db, ADMIN, approval.id)
    assert json.loads(editor)["note"] == ESCROW
    message = answer(
        db, ADMIN, approval.id, "Approve", "{}", "", "", None, issued_for=issued_for(db, ADMIN, approval.id)
    )
    assert message.startswith("**Recorded.**"), message
    run(db, registry)  # type: ignore[arg-type]
    assert calls.of("pay") == [{**PROPOSED, "note": ESCROW}]


def test_rest_refuses_an_answer_for_a_level_or_call_that_has_moved_on(
    client: TestClient, db: Database, calls: Calls
) -> None:
    registry, approval = two_levels(db, calls)
    admin = token_for(db, ADMIN, role="admin")
    read = client.get(f"/api/approvals/{approval.id}", headers=admin).json()
    level, digest = read["level"], read["proposed_call"]["digest"]
    finance_changes_the_note(db, approval.id)
    url = f"/api/approvals/{approval.id}/respond"
    for given in ({"level": level}, {"level": 1, "digest": digest}):
        refused = client.post(url, headers=admin, json={"decision": "approve", **given})
        assert refused.status_code == 409, refused.text
        assert [v.approver for v in ApprovalEngine(db).responses(approval.id)] == [FINANCE]
    now = client.get(f"/api/approvals/{approval.id}", headers=admin).json()
    assert now["level"] == 1 and now["released_call"]["arguments"]["note"] == ESCROW
    answered = client.post(
        url,
        headers=admin,
        json={"decision": "approve", "level": 1, "digest": now["released_call"]["digest"]},
    )
    assert answered.status_code == 200, answered.text
    run(db, registry)  # type: ignore[arg-type]
    assert calls.of("pay") == [{**PROPOSED, "note": ESCROW}]
