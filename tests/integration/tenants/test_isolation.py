"""Tenant A cannot list, read or answer tenant B's approvals (nor see B's
workflows) through core or the REST API, on SQLite and PostgreSQL; A can do
all of it on its own; a platform admin sees both. Another tenant's ids
answer exactly like unknown ids."""

from __future__ import annotations

import html
import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.approvals import inbox as reports
from core.approvals import monitor
from core.approvals.engine import ApprovalEngine
from core.base.errors import ApprovalNotFound, NotAuthorized, WorkflowNotFound
from core.channels.notifications import addresses_of
from core.engine import workflows as ops
from core.identity.api_tokens import create_token
from core.store.db import Database
from core.store.tables import ApprovalResponse
from gateway.app import create_app
from tests.integration.tenants.conftest import GROUP, TwoTenants, definition


def votes_on(db: Database, approval_id: str) -> int:
    with db.read() as session:
        return int(
            session.scalar(select(func.count()).where(ApprovalResponse.approval_id == approval_id)) or 0
        )


def unknown_message(exc: Exception, real_id: str) -> str:
    return str(exc).replace(real_id, "<id>")


def test_rows_carry_their_tenant(db: Database, two_tenants: TwoTenants) -> None:
    for side in (two_tenants.a, two_tenants.b):
        assert ops.get_workflow(db, side.workflow_id).tenant == side.tenant
        assert ApprovalEngine(db).get(side.approval_id).tenant == side.tenant
    with pytest.raises(NotAuthorized, match="belongs to tenant 'alpha'"):
        ops.create_workflow(db, definition("beta"), created_by=two_tenants.a.requester, tenant="beta")


def test_core_tenant_a_cannot_list_read_or_answer_b(db: Database, two_tenants: TwoTenants) -> None:
    a, b = two_tenants.a, two_tenants.b
    engine = ApprovalEngine(db)
    # Listing: the inbox, the pending list, workflows; the shared group name brings nothing of B's.
    assert [r.id for r in reports.inbox(db, a.approver)] == [a.approval_id]
    summary = reports.inbox_summary(db, a.approver)
    assert (summary.total, summary.by_type) == (1, {"binary": 1})
    assert [r.id for r in reports.inbox(db, a.approver, reports.InboxFilter(approval_type="binary"))] == [
        a.approval_id
    ]
    assert reports.inbox(db, a.approver, reports.InboxFilter(workflow_id=b.workflow_id)) == []
    assert [r.id for r in engine.list_pending_approvals(a.approver)] == [a.approval_id]
    assert [r.id for r in engine.list_pending_approvals(tenant=a.tenant)] == [a.approval_id]
    assert [w.id for w in ops.list_workflows(db, tenant=a.tenant).rows] == [a.workflow_id]
    assert ops.approvals_of(db, b.workflow_id, tenant=a.tenant) == []
    # Reading: like an unknown id, the same message.
    with pytest.raises(ApprovalNotFound) as other:
        engine.get(b.approval_id, tenant=a.tenant)
    with pytest.raises(ApprovalNotFound) as unknown:
        engine.get(str(uuid.uuid4()), tenant=a.tenant)
    assert unknown_message(other.value, b.approval_id) == unknown_message(
        unknown.value, str(unknown.value).split("'")[1]
    )
    for read in (ops.get_workflow, ops.events_of, ops.checkpoints_of, ops.step_runs_of, ops.workflow_status):
        with pytest.raises(WorkflowNotFound):
            read(db, b.workflow_id, tenant=a.tenant)  # type: ignore[operator]
    # Answering and steering: refused as unknown, nothing written.
    with pytest.raises(ApprovalNotFound):
        engine.respond_to_approval(b.approval_id, a.approver, "approve", channel="slack")
    with pytest.raises(WorkflowNotFound):
        ops.pause_workflow(db, b.workflow_id, a.approver)
    with pytest.raises(ApprovalNotFound):
        engine.expire_approval(b.approval_id, a.approver)
    assert engine.get(b.approval_id).status == "pending" and votes_on(db, b.approval_id) == 0
    assert ops.get_workflow(db, b.workflow_id).status == "waiting_approval"
    # Monitor aggregates count the viewer's tenant only.
    assert monitor.approval_totals(db, tenant=a.tenant)["pending"] == 1
    assert monitor.workflows_by_status(db, tenant=a.tenant) == {"waiting_approval": 1}
    # A's own request: A reads and answers it.
    assert engine.get(a.approval_id, tenant=a.tenant).id == a.approval_id
    assert engine.respond_to_approval(a.approval_id, a.approver, "approve").status == "approved"


def test_platform_admin_sees_both_tenants(db: Database, two_tenants: TwoTenants) -> None:
    admin = two_tenants.platform_admin
    ids = {two_tenants.a.approval_id, two_tenants.b.approval_id}
    assert {r.id for r in reports.inbox(db, admin)} == ids
    assert ops.list_workflows(db).total == 2
    assert monitor.approval_totals(db)["pending"] == 2


def test_group_mail_goes_only_to_members_who_can_see_the_request(
    db: Database, two_tenants: TwoTenants
) -> None:
    with db.read() as session:
        assert addresses_of(session, GROUP, tenant="alpha") == [
            two_tenants.a.approver,
            two_tenants.platform_admin,
        ]
        assert addresses_of(session, GROUP) == [two_tenants.platform_admin]


def test_rest_tenant_a_token_cannot_list_read_or_answer_b(db: Database, two_tenants: TwoTenants) -> None:
    a, b = two_tenants.a, two_tenants.b
    _, token = create_token(db, a.approver, "tests")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(db, approver_ui=False)) as client:
        assert [r["id"] for r in client.get("/api/approvals", headers=headers).json()] == [a.approval_id]
        assert (
            client.get("/api/approvals", headers=headers, params={"workflow_id": b.workflow_id}).json() == []
        )
        page = client.get("/api/workflows", headers=headers).json()
        assert (page["total"], [w["id"] for w in page["items"]]) == (1, [a.workflow_id])

        unknown_id = str(uuid.uuid4())
        unknown = client.get(f"/api/approvals/{unknown_id}", headers=headers)
        other = client.get(f"/api/approvals/{b.approval_id}", headers=headers)
        assert (other.status_code, unknown.status_code) == (404, 404)
        assert other.json()["error"] == unknown.json()["error"]
        assert other.json()["message"].replace(b.approval_id, "<id>") == unknown.json()["message"].replace(
            unknown_id, "<id>"
        )

        answer = {"decision": "approve", "data": {}, "comment": "not mine"}
        refused = client.post(f"/api/approvals/{b.approval_id}/respond", headers=headers, json=answer)
        assert refused.status_code == 404, refused.text
        assert refused.json()["message"].replace(b.approval_id, "<id>") == unknown.json()["message"].replace(
            unknown_id, "<id>"
        )
        for path in (f"/api/workflows/{b.workflow_id}", f"/api/workflows/{b.workflow_id}/checkpoints"):
            assert client.get(path, headers=headers).status_code == 404
        assert (
            client.post(
                f"/api/workflows/{b.workflow_id}/pause", headers=headers, json={"reason": "x"}
            ).status_code
            == 404
        )
        assert ApprovalEngine(db).get(b.approval_id).status == "pending"
        assert votes_on(db, b.approval_id) == 0

        # A's own: read and answered.
        assert client.get(f"/api/approvals/{a.approval_id}", headers=headers).status_code == 200
        assert client.get(f"/api/workflows/{a.workflow_id}", headers=headers).status_code == 200
        mine = client.post(f"/api/approvals/{a.approval_id}/respond", headers=headers, json=answer)
        assert mine.status_code == 200, mine.text
        assert mine.json()["status"] == "approved"


def test_gradio_approver_ui_and_slack_list_only_the_approvers_tenant(
    db: Database, two_tenants: TwoTenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import approver_ui
    from gateway.slack import handle_command

    a, b = two_tenants.a, two_tenants.b
    assert [approval_id for _, approval_id in approver_ui.inbox(db, a.approver)] == [a.approval_id]
    with pytest.raises(ApprovalNotFound):
        approver_ui.details(db, a.approver, b.approval_id)
    refused = approver_ui.answer(db, a.approver, b.approval_id, "Approve", "{}", "")
    assert html.unescape(refused) == f"**Refused:** No approval request has the id {b.approval_id!r}."
    assert votes_on(db, b.approval_id) == 0

    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({"UALPHA": a.approver}))
    listed = handle_command(db, {"user_id": "UALPHA"})
    assert listed["text"].startswith("1 approval(s) waiting for you")
    assert "Pay the alpha invoice" in str(listed["blocks"]) and "beta" not in str(listed["blocks"])
