"""Forcing a request's expiry (`approvals expire`) is steering it: `approvals:reassign`.
A viewer or a person without an account is refused and the request stays open."""

from __future__ import annotations

import pytest

from core.approvals.engine import ApprovalEngine
from core.base.errors import NotAuthorized
from core.engine.tools import ToolRegistry
from core.store.db import Database
from tests.helpers.engine import accounts, approval, open_approval_of, run, start, status, tool


@pytest.mark.parametrize("actor", ["viewer@example.com", "stranger@example.com"])
def test_a_viewer_or_stranger_cannot_force_an_expiry(
    db: Database, registry: ToolRegistry, actor: str
) -> None:
    accounts(db, "viewer", "viewer@example.com")
    accounts(db, "approver", "boss@example.com")
    workflow_id = start(db, [approval("sign", on_timeout="reject"), tool("do", "after")])
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    with pytest.raises(NotAuthorized, match="approvals:reassign"):
        ApprovalEngine(db).expire_approval(request.id, actor)
    assert ApprovalEngine(db).get(request.id).status == "pending"
    assert status(db, workflow_id) == "waiting_approval"


def test_an_approver_forces_the_expiry_and_the_deadline_rule_applies(
    db: Database, registry: ToolRegistry
) -> None:
    accounts(db, "approver", "boss@example.com")
    workflow_id = start(db, [approval("sign", on_timeout="reject"), tool("do", "after")])
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    assert ApprovalEngine(db).expire_approval(request.id, "boss@example.com").status == "expired"
