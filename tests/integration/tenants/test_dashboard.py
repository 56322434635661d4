"""The dashboard (app.py in Streamlit's AppTest): tenant A's approver cannot
list, read or answer tenant B's request, nor see B's workflow, on the Inbox,
Approval (deep link), Workflows and Workflow pages, on SQLite and
PostgreSQL; A does all of it on its own. And the admin-only Tenants page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.approvals.engine import ApprovalEngine
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import TenantSecret
from core.tenants import registry as tenants
from tests.integration.dashboard.conftest import (
    _app_over,
    all_text,
    new_app,
    no_exception,
    open_page,
    sign_in,
    table_with,
)
from tests.integration.tenants.conftest import PASSWORD, TwoTenants, build
from tests.integration.tenants.test_isolation import votes_on

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def scene(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoTenants]:
    found = build(db)
    with _app_over(monkeypatch, db_url):
        yield found


def links(at: AppTest) -> list[str]:
    return [link.proto.label for link in at.get("page_link")]


def test_tenant_a_cannot_see_or_answer_b_in_the_dashboard(db: Database, scene: TwoTenants) -> None:
    a, b = scene.a, scene.b
    at = sign_in(new_app(), a.approver, PASSWORD)
    no_exception(at)
    # Inbox: A's request only, though both are asked of the group "finance".
    assert "Pay the alpha invoice" in links(at) and "Pay the beta invoice" not in links(at)
    # Approval deep link to B's request: as unknown, no form, no buttons.
    open_page(at, "approval", approval=b.approval_id)
    no_exception(at)
    assert [e.value for e in at.error] == [f"No approval request has the id {b.approval_id!r}."]
    assert "Pay the beta invoice" not in all_text(at)
    assert not [button for button in at.button if button.key == "approval.reject"]
    # Workflows: A's only; Workflow deep link to B's: as unknown.
    open_page(at, "workflows")
    no_exception(at)
    assert list(table_with(at, "name", "status")["id"]) == [a.workflow_id]
    open_page(at, "workflow", workflow=b.workflow_id)
    assert [e.value for e in at.error] == [f"No workflow has the id {b.workflow_id!r}."]
    assert ApprovalEngine(db).get(b.approval_id).status == "pending"
    assert votes_on(db, b.approval_id) == 0

    # A's own request: opened and approved from the dashboard.
    open_page(at, "workflow", workflow=a.workflow_id)
    assert not at.error and "Payout for alpha" in [t.value for t in at.title]
    open_page(at, "approval", approval=a.approval_id)
    assert "Pay the alpha invoice" in all_text(at)
    at.button(key="approval.approve").click().run()
    no_exception(at)
    assert ApprovalEngine(db).get(a.approval_id).status == "approved"


def test_the_platform_admin_sees_both_tenants(scene: TwoTenants) -> None:
    at = sign_in(new_app(), scene.platform_admin, PASSWORD)
    assert {"Pay the alpha invoice", "Pay the beta invoice"} <= set(links(at))
    open_page(at, "workflows")
    assert set(table_with(at, "name", "status")["id"]) == {scene.a.workflow_id, scene.b.workflow_id}


def test_the_tenants_page_is_for_platform_admins(
    db: Database, scene: TwoTenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_SECRETS_KEY", Fernet.generate_key().decode())
    add_user(db, "boss@alpha.test", role="admin", password=PASSWORD, tenant="alpha")
    tenant_admin = sign_in(new_app(), "boss@alpha.test", PASSWORD)
    for platform_page in ("tenants", "settings"):  # not registered for a tenant's admin
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            open_page(tenant_admin, platform_page)
    approver = sign_in(new_app(), scene.a.approver, PASSWORD)
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not registered
        open_page(approver, "tenants")

    at = sign_in(new_app(), scene.platform_admin, PASSWORD)
    open_page(at, "tenants")
    no_exception(at)
    assert set(table_with(at, "slug", "name")["slug"]) == {"alpha", "beta"}
    at.text_input(key="tenants.create.slug").input("gamma")
    at.text_input(key="tenants.create.name").input("Gamma Ltd")
    at.button(key="tenants.create.submit").click().run()
    no_exception(at)
    assert "Tenant gamma created." in all_text(at)
    assert at.selectbox(key="tenants.choice").value == "gamma"

    at.text_input(key="tenants.gamma.flow.name").input("support")
    at.multiselect(key="tenants.gamma.flow.tools").set_value(["send_confirmation"])
    at.text_area(key="tenants.gamma.flow.parameters").input('{"max_steps": 4}')
    at.button(key="tenants.gamma.flow.submit").click().run()
    no_exception(at)
    assert [f.name for f in tenants.list_flows(db, "gamma")] == ["support"]
    at.text_area(key="tenants.gamma.flow.parameters").input("[1]")
    at.button(key="tenants.gamma.flow.submit").click().run()
    assert any("parameters: must be a JSON object" in e.value for e in at.error)

    at.text_input(key="tenants.gamma.secret.value").input("sk-gamma-0123456789")
    at.button(key="tenants.gamma.secret.submit").click().run()
    no_exception(at)
    assert "Secret model_api_key saved (encrypted)." in all_text(at)
    assert at.text_input(key="tenants.gamma.secret.value").value == ""
    shown = str(table_with(at, "name", "value").to_dict()) + all_text(at)
    assert "sk-gamma" not in shown and tenants.MASK in shown
    with db.read() as session:
        stored = session.scalars(select(TenantSecret.ciphertext)).all()
    assert stored and all("sk-gamma" not in c for c in stored)

    at.text_input(key="tenants.gamma.model.model_id").input("gamma-model")
    at.button(key="tenants.gamma.model.submit").click().run()
    no_exception(at)
    assert tenants.get_tenant(db, "gamma").settings["model"] == {"model_id": "gamma-model"}

    at.button(key="tenants.gamma.secret.delete").click().run()
    no_exception(at)
    assert "Secret model_api_key deleted." in all_text(at)
    assert tenants.list_tenant_secrets(db, "gamma") == []
    at.button(key="tenants.gamma.flow.remove").click().run()
    no_exception(at)
    assert "Flow support removed." in all_text(at)
    assert tenants.list_flows(db, "gamma") == []
