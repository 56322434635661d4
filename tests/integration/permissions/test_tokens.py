"""API tokens with scopes and expiry, and the audit trail of permissions, on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cli.main import main
from core.base.errors import CountersignError, NotAuthorized, NotFound
from core.engine import workflows as ops
from core.identity.api_tokens import (
    authenticate_token,
    create_token,
    list_tokens,
    parse_lifetime,
    revoke_token,
)
from core.identity.permissions import REFUSED_EVENT, Action, allowed, check, token_actions
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApiToken, User, WorkflowEvent, utcnow
from core.tenants.registry import create_tenant
from gateway.app import create_app
from tests.integration.permissions.world import EMAILS, GATE, World, add_accounts

AGENT = "agent@perm.test"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def events(db: Database, event_type: str) -> list[WorkflowEvent]:
    with db.read() as session:
        return list(
            session.scalars(
                select(WorkflowEvent).where(WorkflowEvent.event_type == event_type).order_by(WorkflowEvent.id)
            )
        )


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, approver_ui=False)) as test_client:
        yield test_client


def test_a_token_scoped_to_start_starts_and_is_refused_answering_and_rolling_back(
    db: Database, client: TestClient
) -> None:
    add_accounts(db)
    # Even an admin's token does only what its scopes say.
    _, token = create_token(db, EMAILS["admin"], "starter", scopes=["workflows:start"])
    started = client.post("/api/workflows", headers=bearer(token), json={"definition": GATE})
    assert started.status_code == 201, started.text
    workflow_id = started.json()["id"]
    World(db).run()
    # A request someone else started, which names the admin among its approvers.
    approval_id = World(db).approval()

    answered = client.post(
        f"/api/approvals/{approval_id}/respond", headers=bearer(token), json={"decision": "approve"}
    )
    assert answered.status_code == 403
    assert answered.json() == {
        "error": "NotAuthorized",
        "action": "approvals:answer",
        "problems": [],
        "message": "admin@perm.test may not approvals:answer (token 'starter' is scoped to workflows:start)",
    }
    rolled = client.post(
        f"/api/workflows/{workflow_id}/rollback",
        headers=bearer(token),
        json={"checkpoint": "prepare", "reason": "undo"},
    )
    assert (rolled.status_code, rolled.json()["action"]) == (403, "workflows:rollback")
    assert ops.get_workflow(db, workflow_id).status == "waiting_approval"  # nothing happened
    refused = [(e.actor, e.data["action"], e.data["token"]) for e in events(db, REFUSED_EVENT)]
    assert refused == [
        (EMAILS["admin"], "approvals:answer", "starter"),
        (EMAILS["admin"], "workflows:rollback", "starter"),
    ]
    # The same admin, in the dashboard or the CLI (no token), may do both.
    assert allowed(db, EMAILS["admin"], Action.WORKFLOWS_ROLLBACK)


def test_the_seed_agent_gets_a_service_token_that_cannot_answer(db: Database, client: TestClient) -> None:
    """The seed's agent use case: a service that starts workflows and reads their status."""
    add_accounts(db)
    add_user(db, AGENT, role="service")
    row, token = create_token(db, AGENT, "agent")  # default scopes: the service role's
    assert row.scopes == ["workflows:cancel", "workflows:pause", "workflows:resume", "workflows:start"]
    assert client.get("/api/me", headers=bearer(token)).json()["scopes"] == row.scopes
    started = client.post("/api/workflows", headers=bearer(token), json={"definition": GATE})
    workflow_id = started.json()["id"]
    World(db).run()
    status = client.get(f"/api/workflows/{workflow_id}", headers=bearer(token)).json()
    assert status["status"] == "waiting_approval"
    [pending] = status["pending_approvals"]
    answered = client.post(
        f"/api/approvals/{pending['id']}/respond", headers=bearer(token), json={"decision": "approve"}
    )
    assert answered.status_code == 403  # not even named on the request could it answer
    # Its own workflow it may pause and cancel; another's not.
    assert (
        client.post(f"/api/workflows/{workflow_id}/pause", headers=bearer(token), json={}).status_code == 200
    )
    other = World(db).waiting("requester")
    refused = client.post(f"/api/workflows/{other}/cancel", headers=bearer(token), json={})
    assert refused.json()["message"] == f"{AGENT} may not workflows:cancel (role service)"
    assert (
        client.post(f"/api/workflows/{workflow_id}/cancel", headers=bearer(token), json={}).status_code == 200
    )


def test_a_token_never_has_more_than_its_users_role(db: Database) -> None:
    add_accounts(db)
    with pytest.raises(
        NotAuthorized,
        match=r"A token for service@perm.test cannot have "
        r"approvals:answer: their role service does not allow it",
    ):
        create_token(db, EMAILS["service"], "greedy", scopes=["workflows:start", "approvals:answer"])
    with pytest.raises(CountersignError, match="Unknown action 'workflows:fly'"):
        create_token(db, EMAILS["admin"], "typo", scopes=["workflows:fly"])
    with pytest.raises(NotFound, match="No user 'ghost@perm.test'"):
        create_token(db, "ghost@perm.test", "ghost")
    assert list_tokens(db) == []
    [refusal] = events(db, REFUSED_EVENT)
    assert (refusal.actor, refusal.data["action"]) == ("system", "approvals:answer")
    # Only admins make tokens, and not for another tenant's accounts.
    with pytest.raises(NotAuthorized, match="approver@perm.test may not users:manage"):
        create_token(db, EMAILS["service"], "x", actor=EMAILS["approver"])
    create_tenant(db, "acme")
    add_user(db, "boss@acme.test", role="admin", tenant="acme")
    add_user(db, "bot@acme.test", role="service", tenant="acme")
    assert create_token(db, "bot@acme.test", "acme bot", actor="boss@acme.test")[0].scopes
    with pytest.raises(NotAuthorized, match="boss@acme.test may not users:manage .*another tenant's"):
        create_token(db, EMAILS["service"], "x", actor="boss@acme.test")
    assert [t.name for t in list_tokens(db, tenant="acme")] == ["acme bot"]


def test_role_changes_apply_to_existing_tokens_and_are_audited(db: Database, client: TestClient) -> None:
    add_accounts(db)
    _, token = create_token(db, EMAILS["approver"], "laptop")
    workflow_id = World(db).waiting("requester")
    add_user(db, EMAILS["approver"], role="viewer", actor=EMAILS["admin"])  # demoted
    paused = client.post(f"/api/workflows/{workflow_id}/pause", headers=bearer(token), json={})
    assert paused.json()["message"] == "approver@perm.test may not workflows:pause (role viewer)"
    [changed] = events(db, "user.role_changed")
    assert (changed.actor, changed.before, changed.after) == (
        EMAILS["admin"],
        {"role": "approver", "tenant": None},
        {"role": "viewer", "tenant": None},
    )
    with pytest.raises(NotAuthorized, match="viewer@perm.test may not users:manage"):
        add_user(db, EMAILS["viewer"], role="admin", actor=EMAILS["viewer"])  # no self-promotion
    with db.read() as session:
        assert session.get_one(User, EMAILS["viewer"]).role == "viewer"


def test_expired_revoked_and_orphaned_tokens_are_refused(db: Database, client: TestClient) -> None:
    add_accounts(db)
    _, expired = create_token(db, EMAILS["approver"], "old", expires_in=timedelta(days=1))
    with db.session() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.name == "old")).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
    answer = client.get("/api/me", headers=bearer(expired))
    assert answer.status_code == 401 and "The API token 'old' expired at" in answer.json()["message"]

    row, revoked = create_token(db, EMAILS["approver"], "lost")
    revoke_token(db, row.id, actor=EMAILS["approver"])  # anyone may revoke their own
    assert "was revoked" in client.get("/api/me", headers=bearer(revoked)).json()["message"]
    [event] = events(db, "token.revoked")
    assert (event.actor, event.data["name"]) == (EMAILS["approver"], "lost")

    _, orphan = create_token(db, EMAILS["viewer"], "orphan")
    with db.session() as session:
        session.delete(session.get_one(User, EMAILS["viewer"]))
    with pytest.raises(NotAuthorized, match="acts as viewer@perm.test, who has no account any more"):
        authenticate_token(db, orphan)
    created = events(db, "token.created")
    assert [(e.actor, e.data["name"]) for e in created] == [
        ("system", "old"),
        ("system", "lost"),
        ("system", "orphan"),
    ]
    with db.read() as session:  # the audit trail holds no token, only its id and name
        hashes = [t.token_hash for t in session.scalars(select(ApiToken))]
    assert not any(h in str(e.data) or "cs_" in str(e.data) for e in created for h in hashes)


def test_tokens_cli_scopes_expiry_list_and_revoke(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    add_accounts(db)
    main(
        [
            "tokens",
            "create",
            "--user",
            EMAILS["admin"],
            "--scope",
            "approvals:answer",
            "--scope",
            "workflows:start",
            "--expires",
            "30d",
            "--name",
            "ci",
        ]
    )
    out = capsys.readouterr()
    token = out.out.strip()
    assert re.fullmatch(r"cs_[A-Za-z0-9_-]{40,}", token)
    assert "scopes approvals:answer workflows:start, expires" in out.err
    [row] = list_tokens(db)
    assert row.scopes == ["approvals:answer", "workflows:start"]
    assert row.expires_at is not None and timedelta(days=29) < row.expires_at - utcnow() <= timedelta(days=30)
    main(["tokens", "list"])
    listed = capsys.readouterr().out
    assert "approvals:answer workflows:start" in listed and "live" in listed and token not in listed
    # Refused, one line: a viewer making a token; a lifetime that is not one.
    for argv, said in (
        (
            ["tokens", "create", "--user", EMAILS["service"], "--as", EMAILS["viewer"]],
            "error: viewer@perm.test may not users:manage (role viewer)",
        ),
        (
            ["tokens", "create", "--user", EMAILS["service"], "--expires", "soon"],
            "error: 'soon' is not a lifetime; write e.g. 30d, 12h, 90m or 2w.",
        ),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert capsys.readouterr().err.strip() == said
    main(["tokens", "revoke", str(row.id), "--as", EMAILS["admin"]])
    assert capsys.readouterr().out.strip() == f"token {row.id} 'ci' revoked"
    assert [e.actor for e in events(db, "token.revoked")] == [EMAILS["admin"]]


def test_platform_actions_need_a_platform_user(db: Database) -> None:
    create_tenant(db, "acme")
    add_user(db, "boss@acme.test", role="admin", tenant="acme")
    with db.read() as session:
        for action in (
            Action.CHANNELS_CONFIGURE,
            Action.TENANTS_MANAGE,
            Action.AGENTS_MANAGE,
            Action.DATA_EXPORT,
            Action.DATA_IMPORT,
            Action.ALERTS_ACKNOWLEDGE,
        ):
            with pytest.raises(NotAuthorized) as refused:
                check(session, "boss@acme.test", action)
            assert str(refused.value) == (
                f"boss@acme.test may not {action} (role admin of tenant acme; platform users only)"
            )
        # Within the tenant, the tenant's admin is an admin.
        check(session, "boss@acme.test", Action.USERS_MANAGE, tenant="acme")
        check(session, "boss@acme.test", Action.WORKFLOWS_ROLLBACK)


def test_lifetimes() -> None:
    assert parse_lifetime("30d") == timedelta(days=30)
    assert parse_lifetime(" 12h ") == timedelta(hours=12)
    assert parse_lifetime("2w") == timedelta(weeks=2)
    for bad in ("", "0d", "30", "-1d", "1y", "99999d"):
        with pytest.raises(CountersignError):
            parse_lifetime(bad)


def test_token_actions_follow_the_roles() -> None:
    assert token_actions("viewer") == {Action.AUDIT_READ}
    assert token_actions("service") == {
        Action.WORKFLOWS_START,
        Action.WORKFLOWS_PAUSE,
        Action.WORKFLOWS_RESUME,
        Action.WORKFLOWS_CANCEL,
    }
    assert token_actions("admin") == set(Action)
    assert token_actions("nobody") == frozenset()
