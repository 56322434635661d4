"""A person of another tenant is never asked to decide (core.identity.groups.not_in_tenant).

Amy is a user of tenant acme; a globex workflow that names her (as approver, in
a budget level, its escalation chain, its backup, its agent's routing) could
never be answered: she cannot see globex's rows and her vote is refused. So it
is refused when it starts, through core and the REST API, with nothing
written; a request opened at run time naming her is refused the same way; the
email confirmation page never shows her a globex request; and no message about
one ever reaches her. Addresses without an account and platform users may be
named anywhere, as before. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.base.errors import ApproverOutsideTenant, Invalid
from core.engine import workflows as ops
from core.identity.api_tokens import create_token
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import ApprovalRequest, Notification, Workflow, WorkflowEvent
from core.tenants.registry import create_tenant
from gateway.app import create_app
from tests.integration.channels.conftest import (  # noqa: F401 (fixtures: mail on loopback, link secrets)
    Mailbox,
    channel_env,
    dispatcher,
    smtp,
)

PASSWORD = "tenant-test-password"
AMY = "amy@acme.example"
GLOBEX_ADMIN = "admin@globex.example"
GLOBEX_APPROVER = "gil@globex.example"
PLATFORM_ADMIN = "root@platform.example"
NO_ACCOUNT = "outside@contractor.example"
TITLE = "GLOBEX SECRET payout"


@dataclass(frozen=True)
class People:
    amy: str = AMY
    globex_admin: str = GLOBEX_ADMIN


@pytest.fixture
def people(db: Database) -> People:
    create_tenant(db, "acme", name="ACME")
    create_tenant(db, "globex", name="Globex")
    add_user(db, AMY, role="approver", password=PASSWORD, tenant="acme")
    add_user(db, GLOBEX_ADMIN, role="admin", password=PASSWORD, tenant="globex")
    add_user(db, GLOBEX_APPROVER, role="approver", password=PASSWORD, tenant="globex", groups=["finance"])
    add_user(db, PLATFORM_ADMIN, role="admin", password=PASSWORD)
    return People()


def payout(**config: Any) -> dict[str, Any]:
    approval: dict[str, Any] = {"title": TITLE, "channels": ["email"], "requested_from": AMY}
    approval.update(config)
    return {
        "name": "Globex payout",
        "steps": [
            {"name": "approve_payout", "type": "approval", "approval_config": approval},
            {"name": "done", "type": "checkpoint"},
        ],
    }


def written(db: Database) -> tuple[int, int, int, int]:
    """Workflows, approval requests, notifications and events stored."""
    with db.read() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Workflow, ApprovalRequest, Notification, WorkflowEvent)
        )


# Every place a definition names a person to decide, and the path the refusal names.
PLACES = [
    pytest.param({}, "steps[0].approval_config.requested_from[0]", id="requested_from"),
    pytest.param(
        {"requested_from": GLOBEX_APPROVER, "required_approvers": [AMY], "approval_threshold": 1},
        "steps[0].approval_config.required_approvers[0]",
        id="required_approvers",
    ),
    pytest.param(
        {
            "requested_from": [],
            "type": "budget",
            "context_data": {"amount": 5000},
            "levels": [
                {"min_amount": 0, "approvers": [GLOBEX_APPROVER]},
                {"min_amount": 1000, "approvers": ["finance", AMY]},
            ],
        },
        "steps[0].approval_config.levels[1].approvers[1]",
        id="budget-level",
    ),
    pytest.param(
        {"requested_from": GLOBEX_APPROVER, "timeout": "1h", "escalate_to": ["finance", AMY]},
        "steps[0].approval_config.escalate_to[1][0]",
        id="escalate_to",
    ),
    pytest.param(
        {"requested_from": GLOBEX_APPROVER, "timeout": "1h", "backup": {"to": AMY, "after": "50%"}},
        "steps[0].approval_config.backup.to",
        id="backup",
    ),
]


@pytest.mark.parametrize(("config", "where"), PLACES)
def test_core_refuses_to_start_a_workflow_naming_another_tenants_user(
    db: Database, people: People, config: dict[str, Any], where: str
) -> None:
    before = written(db)
    with pytest.raises(ApproverOutsideTenant) as refused:
        ops.create_workflow(db, payout(**config), created_by=GLOBEX_ADMIN)
    assert isinstance(refused.value, Invalid)
    message = str(refused.value)
    assert f"{where}: {AMY} is not in this workflow's tenant 'globex'" in message, message
    assert "\n" not in message
    assert written(db) == before  # nothing written


def test_core_refuses_an_inline_agents_routing_to_another_tenants_user(db: Database, people: People) -> None:
    definition = {
        "name": "Agent payout",
        "steps": [
            {
                "name": "agent_pays",
                "type": "task",
                "agent": {"instructions": "pay", "approval": {"requested_from": [AMY]}},
            }
        ],
    }
    before = written(db)
    with pytest.raises(ApproverOutsideTenant, match=r"steps\[0\]\.agent\.approval\.requested_from\[0\]"):
        ops.create_workflow(db, definition, created_by=GLOBEX_ADMIN)
    assert written(db) == before


def test_a_platform_workflow_may_not_name_a_tenants_user(db: Database, people: People) -> None:
    """A tenant's user cannot see platform rows either (core.store.tenancy)."""
    with pytest.raises(ApproverOutsideTenant, match="none: a platform workflow"):
        ops.create_workflow(db, payout(), created_by=PLATFORM_ADMIN)


@pytest.mark.parametrize("approver", [GLOBEX_APPROVER, PLATFORM_ADMIN, NO_ACCOUNT, "finance"])
def test_own_tenant_platform_users_unknown_addresses_and_groups_may_still_be_named(
    db: Database, people: People, approver: str
) -> None:
    workflow = ops.create_workflow(db, payout(requested_from=approver), created_by=GLOBEX_ADMIN)
    assert workflow.tenant == "globex"
    build_runner(db, runner_id="t").run_until_idle(max_seconds=60)
    [approval] = ops.approvals_of(db, workflow.id)
    assert (approval.status, approval.approvers) == ("pending", [approver])


def test_rest_start_naming_another_tenants_user_is_422_and_writes_nothing(
    db: Database, people: People
) -> None:
    _, token = create_token(db, GLOBEX_ADMIN, "tests")
    headers = {"Authorization": f"Bearer {token}"}
    before = written(db)
    with TestClient(create_app(db, approver_ui=False)) as client:
        response = client.post("/api/workflows", headers=headers, json={"definition": payout()})
    assert response.status_code == 422, response.text
    assert f"{AMY} is not in this workflow's tenant 'globex'" in response.json()["message"]
    assert written(db) == before


def test_a_request_opened_at_run_time_naming_another_tenants_user_is_refused(
    db: Database, people: People
) -> None:
    """The approver may be known only at run time (an agent's question, the API's
    request_approval): the request is refused, never left open for nobody."""
    workflow = ops.create_workflow(db, payout(requested_from=GLOBEX_APPROVER), created_by=GLOBEX_ADMIN)
    before = written(db)
    with pytest.raises(ApproverOutsideTenant, match=f"approval_config.requested_from.0.: {AMY} is not in"):
        ApprovalEngine(db).request_approval(
            workflow.id, TITLE, requested_from=AMY, requested_by=GLOBEX_ADMIN, config={"channels": ["email"]}
        )
    assert written(db) == before


def test_the_email_page_never_shows_another_tenants_request(db: Database, people: People) -> None:
    """A link made out to Amy for a globex request (however she came by it): the GET
    answers like an unknown request, as the POST does, and shows nothing of it."""
    workflow = ops.create_workflow(db, payout(requested_from=GLOBEX_APPROVER), created_by=GLOBEX_ADMIN)
    build_runner(db, runner_id="t").run_until_idle(max_seconds=60)
    [approval] = ops.approvals_of(db, workflow.id)
    amys = make_link_token(approval.id, AMY, "approve")
    gils = make_link_token(approval.id, GLOBEX_APPROVER, "approve")
    with TestClient(create_app(db, approver_ui=False)) as client:
        refused = client.get("/email/confirm", params={"token": amys})
        shown = client.get("/email/confirm", params={"token": gils})
    assert refused.status_code == 404, refused.text
    assert TITLE not in refused.text and GLOBEX_ADMIN not in refused.text
    assert shown.status_code == 200 and TITLE in shown.text  # its own approver still sees it
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_no_message_reaches_a_person_of_another_tenant(
    db: Database,
    people: People,
    smtp: Mailbox,  # noqa: F811 (the fixture imported above)
) -> None:
    """Defence in depth: a row queued for an address that has since become an acme
    account (asked before it had one) is refused by the dispatcher, and nothing new
    is queued for it; the globex approver still gets theirs."""
    newcomer = "new@acme.example"
    workflow = ops.create_workflow(
        db, payout(requested_from=[newcomer, GLOBEX_APPROVER]), created_by=GLOBEX_ADMIN
    )
    build_runner(db, runner_id="t").run_until_idle(max_seconds=60)
    [approval] = ops.approvals_of(db, workflow.id)
    add_user(db, newcomer, role="approver", password=PASSWORD, tenant="acme")  # now acme's

    smtp.start()
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    assert [m["To"] for m in smtp.received()] == [GLOBEX_APPROVER]
    with db.read() as session:
        row = session.scalars(
            select(Notification).where(
                Notification.approval_id == approval.id, Notification.recipient == newcomer
            )
        ).one()
    assert row.status == "dead"
    assert "not in this request's tenant" in (row.last_error or "")
    # Nothing new is queued for them (reminders and escalations go through notify).
    from core.approvals.deciding import notify

    with db.session() as session:
        asked = session.get(ApprovalRequest, approval.id)
        assert asked is not None
        notify(session, asked, [newcomer, GLOBEX_APPROVER], kind="approval.reminder")
    with db.read() as session:
        reminded = session.scalars(
            select(Notification.recipient).where(Notification.kind == "approval.reminder")
        ).all()
    assert reminded == [GLOBEX_APPROVER]


def test_a_step_whose_approver_became_another_tenants_fails_at_once(db: Database, people: People) -> None:
    """Named while they had no account, now acme's: when the step asks, it fails at once
    saying who and why, instead of opening a request nobody can answer."""
    newcomer = "late@acme.example"
    workflow = ops.create_workflow(db, payout(requested_from=newcomer), created_by=GLOBEX_ADMIN)
    add_user(db, newcomer, role="approver", password=PASSWORD, tenant="acme")
    build_runner(db, runner_id="t").run_until_idle(max_seconds=60)
    failed = ops.get_workflow(db, workflow.id)
    assert failed.status == "failed"
    assert f"{newcomer} is not in this workflow's tenant 'globex'" in (failed.error or "")
    assert ops.approvals_of(db, workflow.id) == []
