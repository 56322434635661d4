"""An argument deleted from the Gradio approver's call editor is refused in words
(as the email page and the dashboard refuse it), and nothing is recorded: the
editor holds the whole argument object, so a name left out is a removal the
engine would otherwise ignore, releasing the value the approver deleted. Put
back, the answer goes through and the tool receives what the editor held."""

from __future__ import annotations

import json

from core.approvals.engine import ApprovalEngine
from core.store.db import Database
from gateway.approver_answers import answer, call_editor
from tests.helpers.approved_calls import FINANCE, PROPOSED, pay_registry, run, waiting
from tests.helpers.engine import Calls


def test_a_deleted_argument_is_refused_and_nothing_is_recorded(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    arguments_json, _ = call_editor(db, FINANCE, approval.id)
    edited = {k: v for k, v in json.loads(arguments_json).items() if k != "note"}
    for button in ("Approve with changes", "Approve"):
        message = answer(db, FINANCE, approval.id, button, "{}", "", json.dumps(edited), None)
        assert message.startswith("**Refused:**"), message
        assert "note: an argument cannot be removed" in message, message
        assert ApprovalEngine(db).get(approval.id).status == "pending"
        assert ApprovalEngine(db).responses(approval.id) == []
    run(db, registry)
    assert calls.of("pay") == []
    # Changed instead of deleted: the tool receives exactly what the editor held.
    message = answer(
        db, FINANCE, approval.id, "Approve with changes", "{}", "", json.dumps({**edited, "note": ""}), None
    )
    assert message.startswith("**Recorded.**"), message
    run(db, registry)
    assert calls.of("pay") == [{**PROPOSED, "note": ""}]
