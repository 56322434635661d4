"""Sign-in: local accounts, deep links kept through sign-in, roles, no-sign-in mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from core.identity.users import add_user
from core.store.db import Database
from tests.integration.dashboard.conftest import (
    all_text,
    new_app,
    no_exception,
    open_page,
    page_path,
    pending_for,
    shown_text,
    sign_in,
)


def test_signed_out_visitor_sees_only_the_sign_in_form(at: AppTest, demo_db: Database) -> None:
    at.run()
    no_exception(at)
    assert [t.label for t in at.text_input] == ["Email", "Password"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert "Inbox" not in all_text(at)


def test_wrong_password_is_refused(at: AppTest, demo_db: Database) -> None:
    sign_in(at, "devops@example.com", "not-the-password")
    no_exception(at)
    assert [e.value for e in at.error] == ["Wrong email or password."]
    assert [b.label for b in at.button] == ["Sign in"]
    sign_in(at, "nobody@example.com", "countersign-demo")
    assert [e.value for e in at.error] == ["Wrong email or password."]


def test_deep_link_to_an_approval_lands_there_after_sign_in(at: AppTest, demo_db: Database) -> None:
    approval = pending_for(demo_db, "devops@example.com")[0]
    at.query_params["approval"] = approval.id
    at.run()
    assert approval.id in all_text(at)  # "Sign in to open approval request <id>"
    sign_in(at, "devops@example.com")
    no_exception(at)
    assert [t.value for t in at.title] == [approval.title]
    assert at.query_params["approval"] == approval.id
    labels = [b.label for b in at.button]
    assert "Approve" in labels and "Reject" in labels


def test_deep_link_to_a_workflow_lands_there_after_sign_in(at: AppTest, demo_db: Database) -> None:
    workflow_id = pending_for(demo_db, "devops@example.com")[0].workflow_id
    assert workflow_id
    at.query_params["workflow"] = workflow_id
    sign_in(at, "viewer@example.com")
    no_exception(at)
    assert [t.value for t in at.title] == ["Production deployment"]


def test_sign_out_returns_to_the_form(at: AppTest, demo_db: Database) -> None:
    sign_in(at, "admin@example.com")
    assert [t.value for t in at.title] == ["Inbox"]
    at.button(key="auth.signout").click().run()
    no_exception(at)
    assert [b.label for b in at.button] == ["Sign in"]


def test_settings_page_is_only_registered_for_admins(at: AppTest, demo_db: Database) -> None:
    sign_in(at, "viewer@example.com")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(page_path("settings"))
    admin = sign_in(new_app(), "admin@example.com")
    open_page(admin, "settings")
    no_exception(admin)
    assert [t.value for t in admin.title] == ["Settings"]


def test_a_changed_role_ends_the_session_and_applies_at_the_next_sign_in(
    at: AppTest, demo_db: Database
) -> None:
    sign_in(at, "viewer@example.com")
    add_user(demo_db, "viewer@example.com", role="admin")
    at.run()
    assert "Sign in" in [s.value for s in at.subheader]  # the session ended with the change
    sign_in(at, "viewer@example.com")
    open_page(at, "settings")
    assert [t.value for t in at.title] == ["Settings"]


@pytest.fixture
def server_address() -> Iterator[Callable[[str | None], None]]:
    def set_address(value: str | None) -> None:
        st_config.set_option("server.address", value)

    before = st_config.get_option("server.address")
    yield set_address
    st_config.set_option("server.address", before)


def test_no_sign_in_mode_needs_localhost(
    at: AppTest,
    demo_db: Database,
    server_address: Callable[[str | None], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COUNTERSIGN_AUTH", "none")
    server_address(None)  # all interfaces
    at.run()
    no_exception(at)
    assert [b.label for b in at.button] == ["Sign in"]
    assert "COUNTERSIGN_AUTH=none is ignored" in all_text(at)

    server_address("127.0.0.1")
    local = new_app().run()
    no_exception(local)
    assert [t.value for t in local.title] == ["Inbox"]
    assert any("No sign-in" in w.value for w in local.warning)
    open_page(local, "settings")  # the local admin sees admin pages
    assert [t.value for t in local.title] == ["Settings"]


OIDC_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "test-cookie-secret",
        "client_id": "id",
        "client_secret": "secret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
}


def test_with_oidc_configured_the_identity_comes_from_st_user(demo_db: Database) -> None:
    signed_out = new_app()
    signed_out.secrets = dict(OIDC_SECRETS)
    signed_out.user = {"is_logged_in": False}
    signed_out.query_params["approval"] = pending_for(demo_db, "finance@example.com")[0].id
    signed_out.run()
    no_exception(signed_out)
    assert [b.key for b in signed_out.button] == ["signin.oidc"]
    assert not signed_out.text_input  # no password form with OIDC

    finance = new_app()
    finance.secrets = dict(OIDC_SECRETS)
    finance.user = {"is_logged_in": True, "email": "Finance@Example.com", "name": "Fin"}
    finance.run()
    no_exception(finance)
    assert [link.proto.label for link in finance.get("page_link")] == ["High-value payment"]
    assert "finance@example.com" in shown_text(finance)

    # No local account, and the demo has a tenant (Acme): a platform viewer
    # would see every tenant's rows, so the stranger sees nothing.
    stranger = new_app()
    stranger.secrets = dict(OIDC_SECRETS)
    stranger.user = {"is_logged_in": True, "email": "someone@elsewhere.org", "name": "Someone"}
    stranger.run()
    no_exception(stranger)
    assert "someone@elsewhere.org has no account in this Countersign" in shown_text(stranger)
    assert [b.key for b in stranger.button] == ["signin.oidc_signout"]
    assert ":gray-badge[viewer]" not in all_text(stranger)
    assert "High-value payment" not in all_text(stranger)


def test_with_oidc_and_no_tenants_a_person_without_an_account_is_a_viewer(app_env: str) -> None:
    stranger = new_app()
    stranger.secrets = dict(OIDC_SECRETS)
    stranger.user = {"is_logged_in": True, "email": "someone@elsewhere.org", "name": "Someone"}
    stranger.run()
    no_exception(stranger)
    assert ":gray-badge[viewer]" in all_text(stranger)
