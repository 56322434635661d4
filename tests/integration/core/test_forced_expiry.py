"""Forcing a request's expiry (`approvals expire`) is steering it: `approvals:reassign`.
A viewer or a person without an account is refused and the request stays open."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.approvals.engine import ApprovalEngine
from core.base.errors import NotAuthorized
from core.engine.tools import ToolRegistry
from core.identity.permissions import REFUSED_EVENT
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import WorkflowEvent
from tests.helpers.engine import Calls, accounts, approval, open_approval_of, run, start, status, tool


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


def test_an_approver_not_asked_cannot_force_the_expiry(
    db: Database, registry: ToolRegistry, calls: Calls
) -> None:
    """Separation of duties: forcing the expiry of a request someone else is asked is
    deciding it by its deadline rule (here: approve) without being asked; the rule
    reassigning goes by (core.approvals.handing_on), with a recorded refusal."""
    accounts(db, "approver", "boss@example.com", "manager@example.com")
    workflow_id = start(
        db,
        [approval("sign", on_timeout="approve"), tool("do", "after")],
        created_by="manager@example.com",
    )
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    with pytest.raises(
        NotAuthorized,
        match=r"^manager@example\.com may force the expiry of only a request they are asked to answer "
        r"\(asked: boss@example\.com\); an admin may force the expiry of any\.$",
    ):
        ApprovalEngine(db).expire_approval(request.id, "manager@example.com")
    run(db, registry)
    assert ApprovalEngine(db).get(request.id).status == "pending"
    assert status(db, workflow_id) == "waiting_approval"
    assert calls.of("do") == []
    with db.read() as session:
        [refusal] = session.scalars(
            select(WorkflowEvent).where(WorkflowEvent.event_type == REFUSED_EVENT)
        ).all()
    assert (refusal.actor, refusal.approval_id) == ("manager@example.com", request.id)
    assert refusal.data["action"] == "approvals:reassign"
    assert refusal.data["reason"] == "not asked to answer it"


def test_the_cli_refuses_an_approver_not_asked(
    db: Database, db_url: str, registry: ToolRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import app

    monkeypatch.setenv("DATABASE_URL", db_url)
    accounts(db, "approver", "boss@example.com", "devops@example.com")
    workflow_id = start(db, [approval("sign", on_timeout="approve"), tool("do", "after")])
    run(db, registry)
    request = open_approval_of(db, workflow_id)
    refused = CliRunner().invoke(app, ["approvals", "expire", request.id, "--as", "devops@example.com"])
    assert isinstance(refused.exception, NotAuthorized), refused.output
    assert ApprovalEngine(db).get(request.id).status == "pending"


def test_one_asked_through_a_group_and_an_admin_may_force_it(db: Database, registry: ToolRegistry) -> None:
    add_user(db, "amy@example.com", role="approver", groups=["finance"])
    accounts(db, "admin", "admin@example.com")
    first = start(db, [approval("sign", requested_from="finance", on_timeout="reject")])
    second = start(db, [approval("sign", on_timeout="reject")], name="second")
    run(db, registry)
    by_group = open_approval_of(db, first)
    assert ApprovalEngine(db).expire_approval(by_group.id, "amy@example.com").status == "expired"
    by_admin = open_approval_of(db, second)
    assert ApprovalEngine(db).expire_approval(by_admin.id, "admin@example.com").status == "expired"
