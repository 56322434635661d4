"""Disabled accounts (core.identity.account_state), on SQLite and PostgreSQL: disabling ends
the account's dashboard and gateway sessions and refuses its sign-in, API
tokens, email links and Slack clicks, each with an audit event; only an admin
of the account's tenant disables or enables; the CLI and Settings do both."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select
from typer.testing import CliRunner

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.base.errors import CountersignError, NotAuthorized, NotFound
from core.identity.account_state import disable_user, enable_user
from core.identity.api_tokens import create_token
from core.identity.permissions import REFUSED_EVENT
from core.identity.users import add_user, get_user, session_token, session_user
from core.store.db import Database
from core.store.tables import WorkflowEvent
from gateway.app import create_app
from gateway.browser import CSRF_FIELD
from tests.helpers.browser import form_csrf, sign_in
from tests.integration.gateway.conftest import BOSS, waiting_workflow

ADMIN = "admin@disable.test"
PASSWORD = "disable-tests-password"
SIGNING_SECRET = "disable-tests-slack-secret"
BOSS_SLACK = "U0BOSS"
REFUSED = f"{BOSS} may not approvals:answer (account disabled)"


@pytest.fixture(autouse=True)
def channels_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({BOSS: BOSS_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "disable-tests-link-secret")


@pytest.fixture
def accounts(db: Database) -> Database:
    add_user(db, ADMIN, role="admin", password=PASSWORD)
    add_user(db, BOSS, role="approver", password=PASSWORD)
    return db


def events(db: Database, event_type: str, actor: str | None = None) -> list[WorkflowEvent]:
    with db.read() as session:
        query = select(WorkflowEvent).where(WorkflowEvent.event_type == event_type)
        if actor is not None:
            query = query.where(WorkflowEvent.actor == actor)
        return list(session.scalars(query).all())


def slack_click(client: TestClient, approval_id: str) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": BOSS_SLACK, "username": "boss"},
        "actions": [
            {
                "action_id": "countersign_approve",
                "type": "button",
                "value": json.dumps({"approval_id": approval_id, "level": 0}),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    response = client.post(
        "/slack/interactivity",
        content=body,
        headers={
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": str(signature),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["text"]).replace("\u200b", "")


def test_disabling_ends_sessions_and_refuses_every_way_in(accounts: Database) -> None:
    db = accounts
    _, token = create_token(db, BOSS, "ci")
    bearer = {"Authorization": f"Bearer {token}"}
    _, approval = waiting_workflow(db)  # asks BOSS
    link = make_link_token(approval.id, BOSS, "approve", level=0)
    with TestClient(create_app(db)) as client, TestClient(client.app) as other:
        sign_in(client, BOSS, PASSWORD, "/approve/")
        assert client.get("/approve/config").status_code == 200
        assert client.get("/api/me", headers=bearer).status_code == 200
        dashboard = session_token(get_user(db, BOSS))
        page = client.get("/email/confirm", params={"token": link})  # opened before
        assert page.status_code == 200, page.text

        disable_user(db, BOSS, actor=ADMIN)

        # Sessions: the gateway's and the dashboard's are over.
        assert client.get("/approve/config").status_code == 401
        assert session_user(db, dashboard) is None
        # The API token: refused, with an event.
        me = client.get("/api/me", headers=bearer)
        assert me.status_code == 401 and "whose account is disabled" in me.json()["message"]
        answered = client.post(
            f"/api/approvals/{approval.id}/respond", headers=bearer, json={"decision": "approve"}
        )
        assert answered.status_code == 401
        assert len(events(db, "auth.token_refused", BOSS)) == 2
        # The email link opened before: refused as the other channels refuse it.
        done = client.post(
            "/email/confirm", data={"token": link, "decision": "approve", CSRF_FIELD: form_csrf(page.text)}
        )
        assert done.status_code == 403 and REFUSED in done.text, done.text
        # A Slack click mapped to the account.
        assert REFUSED in slack_click(client, approval.id)
        assert len(events(db, REFUSED_EVENT, BOSS)) == 2
        # Signing in: refused after the right password (a wrong one says only that).
        wrong = sign_in(other, BOSS, "not the password")
        assert wrong.status_code == 401 and "disabled" not in wrong.text
        refused = sign_in(other, BOSS, PASSWORD, follow_redirects=False)
        assert refused.status_code == 401 and "This account is disabled" in refused.text
        [sign_in_event] = [
            e for e in events(db, "auth.sign_in_refused") if e.data["reason"] == "account disabled"
        ]
        assert sign_in_event.data["user"] == BOSS
        # Nothing was decided.
        assert ApprovalEngine(db).get(approval.id).status == "pending"
        assert ApprovalEngine(db).responses(approval.id) == []

        enable_user(db, BOSS, actor=ADMIN)
        assert client.get("/approve/config").status_code == 401  # ended sessions stay ended
        assert session_user(db, dashboard) is None
        assert client.get("/api/me", headers=bearer).status_code == 200
        assert sign_in(other, BOSS, PASSWORD, follow_redirects=False).status_code == 303
        # The refused link was left unspent: it answers now.
        again = client.post(
            "/email/confirm", data={"token": link, "decision": "approve", CSRF_FIELD: form_csrf(page.text)}
        )
        assert again.status_code == 200 and "You approved" in again.text, again.text
    assert [e.actor for e in events(db, "user.disabled")] == [ADMIN]
    assert [e.actor for e in events(db, "user.enabled")] == [ADMIN]


def test_only_an_admin_of_the_accounts_tenant_disables(accounts: Database) -> None:
    db = accounts
    add_user(db, "approver@disable.test", role="approver")
    add_user(db, "admin@acme.test", role="admin", tenant="acme")
    add_user(db, "staff@acme.test", role="approver", tenant="acme")
    with pytest.raises(
        NotAuthorized,
        match=r"approver@disable\.test may not users:manage "
        r"\(role approver\)",
    ):
        disable_user(db, BOSS, actor="approver@disable.test")
    with pytest.raises(NotAuthorized, match="another tenant's"):
        disable_user(db, BOSS, actor="admin@acme.test")
    assert len(events(db, REFUSED_EVENT)) == 2
    with pytest.raises(CountersignError, match="cannot disable their own account"):
        disable_user(db, ADMIN, actor=ADMIN)
    with pytest.raises(NotFound, match="No user 'nobody@disable.test'"):
        disable_user(db, "nobody@disable.test", actor=ADMIN)
    with pytest.raises(CountersignError, match="is already enabled"):
        enable_user(db, BOSS, actor=ADMIN)
    assert get_user(db, BOSS).disabled_at is None and not events(db, "user.disabled")

    disable_user(db, "staff@acme.test", actor="admin@acme.test")  # their own tenant's
    with pytest.raises(CountersignError, match="is already disabled"):
        disable_user(db, "staff@acme.test", actor=ADMIN)
    with pytest.raises(
        NotAuthorized,
        match=r"staff@acme\.test may not workflows:start "
        r"\(account disabled\)",
    ):
        from core.engine import workflows as ops

        ops.create_workflow(
            db, {"name": "x", "steps": [{"name": "c", "type": "checkpoint"}]}, created_by="staff@acme.test"
        )
    enable_user(db, "staff@acme.test", actor="admin@acme.test")
    assert get_user(db, "staff@acme.test").disabled_at is None


def test_the_cli_disables_and_enables(
    accounts: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import app

    db = accounts
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    refused = runner.invoke(app, ["users", "disable", BOSS, "--as", BOSS])
    assert isinstance(refused.exception, NotAuthorized), refused.output
    assert "may not users:manage (role approver)" in str(refused.exception)
    done = runner.invoke(app, ["users", "disable", BOSS, "--as", ADMIN])
    assert done.exit_code == 0 and done.output.strip() == f"disabled {BOSS}", done.output
    assert get_user(db, BOSS).disabled_at is not None
    listed = runner.invoke(app, ["users", "list", "--json"])
    assert {u["email"]: u["disabled_at"] is not None for u in json.loads(listed.output)} == {
        ADMIN: False,
        BOSS: True,
    }
    enabled = runner.invoke(app, ["users", "enable", BOSS, "--as", ADMIN])
    assert enabled.exit_code == 0 and enabled.output.strip() == f"enabled {BOSS}"
    assert get_user(db, BOSS).disabled_at is None


# -- Settings (AppTest, SQLite) -------------------------------------------------------


@pytest.fixture
def dashboard_db(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[Database]:
    from tests.integration.dashboard.conftest import _app_over

    with _app_over(monkeypatch, sqlite_url):
        db = Database(sqlite_url)
        yield db
        db.dispose()


def test_an_admin_disables_an_account_in_settings(dashboard_db: Database) -> None:
    from tests.integration.dashboard.conftest import new_app, no_exception, open_page, shown_text
    from tests.integration.dashboard.conftest import sign_in as dashboard_sign_in

    db = dashboard_db
    add_user(db, ADMIN, role="admin", password=PASSWORD)
    add_user(db, BOSS, role="approver", password=PASSWORD)
    boss = dashboard_sign_in(new_app(), BOSS, PASSWORD)
    no_exception(boss)
    assert "users.disable.submit" not in [b.key for b in boss.button]

    at = dashboard_sign_in(new_app(), ADMIN, PASSWORD)
    open_page(at, "settings")
    no_exception(at)
    at.selectbox(key="users.state.pick").select(BOSS)
    at.button(key="users.disable.submit").click().run()
    no_exception(at)
    assert f"Disabled {BOSS}" in shown_text(at)
    assert get_user(db, BOSS).disabled_at is not None
    # Core refuses what the control would: enabling an active account, disabling oneself.
    at.selectbox(key="users.state.pick").select(ADMIN)
    at.button(key="users.disable.submit").click().run()
    assert "cannot disable their own account" in shown_text(at)
    # The approver's open dashboard session is over.
    open_page(boss, "inbox")
    assert "signin.submit" in [b.key for b in boss.button]
    at.selectbox(key="users.state.pick").select(BOSS)
    at.button(key="users.enable.submit").click().run()
    assert f"Enabled {BOSS}" in shown_text(at)
    assert get_user(db, BOSS).disabled_at is None
