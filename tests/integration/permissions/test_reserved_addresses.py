"""A person is never a system actor (core.identity.permissions), on SQLite and PostgreSQL.

``agent:``, ``system:`` and ``cli:`` name the actors core makes itself (an agent
step, the runner's timeouts, the CLI without ``--as``). An account's address may
not start with one, nor hold a colon before its ``@``: every path that makes an
account (core, the CLI, a tenant's admin) refuses it, naming the field. An account
made before addresses were checked is a person with its role, never a system
actor, and does not sign in; an address with an ``@`` without an account (an email
approver, an OIDC user) is never a system actor either.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from core.base.errors import Invalid, NotAuthorized, SessionNotFound
from core.conversations import sessions as chats
from core.conversations.access import person
from core.identity.browser_sessions import make_session_token
from core.identity.permissions import (
    Action,
    InvalidAddress,
    address_problem,
    allowed,
    check,
    is_system_actor,
    principal,
)
from core.identity.users import add_user, hash_password, outside_sign_in_refusal, session_user, sign_in
from core.store.db import Database
from core.store.tables import User, utcnow
from tests.integration.permissions.test_disabled_accounts import dashboard_db  # noqa: F401  (a fixture)

PASSWORD = "reserved-tests-password"
ADMIN = "admin@example.com"
TENANT_ADMIN = "boss@acme.example"
LEGACY = "agent:x@example.com"  # an account made before addresses were checked


def legacy_account(
    db: Database, email: str = LEGACY, role: str = "viewer", tenant: str | None = None
) -> None:
    """A row as an older version let ``users add`` write it (no check of the address)."""
    with db.session() as session:
        now = utcnow()
        session.add(
            User(
                email=email,
                name="legacy",
                role=role,
                groups=[],
                password_hash=hash_password(PASSWORD),
                tenant=tenant,
                settings={},
                session_version=0,
                created_at=now,
                updated_at=now,
            )
        )


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("agent:x@example.com", "starts with 'agent:', kept for system actors"),
        ("SYSTEM:ops@example.com", "starts with 'system:', kept for system actors"),
        (" cli:root@example.com", "starts with 'cli:', kept for system actors"),
        ("a:b@example.com", "has a colon before the @"),
        ("agent", "is not an email address"),
    ],
)
def test_an_account_address_must_be_a_plain_one(db: Database, address: str, words: str) -> None:
    add_user(db, ADMIN, role="admin")
    add_user(db, TENANT_ADMIN, role="admin", tenant="acme")
    for actor in (ADMIN, TENANT_ADMIN, "system"):
        with pytest.raises(InvalidAddress, match=f"^email: .*{words}") as refused:
            add_user(db, address, role="viewer", tenant="acme", actor=actor)
        assert isinstance(refused.value, Invalid)
    with db.read() as session:
        assert session.get(User, address.strip().lower()) is None
    # A colon after the @ (no address has one, but it is not a prefix) and plain ones pass.
    assert address_problem("agent@example.com") is None
    assert address_problem("cli@example.com") is None


def test_the_cli_refuses_a_reserved_address(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import app

    monkeypatch.setenv("DATABASE_URL", db_url)
    add_user(db, ADMIN, role="admin")
    result = CliRunner().invoke(
        app, ["users", "add", LEGACY, "--role", "viewer", "--password", PASSWORD, "--as", ADMIN]
    )
    assert isinstance(result.exception, InvalidAddress), result.output
    assert "email: 'agent:x@example.com' starts with 'agent:'" in str(result.exception)
    with db.read() as session:
        assert session.get(User, LEGACY) is None


def test_an_account_is_a_person_whatever_its_name(db: Database) -> None:
    legacy_account(db)
    legacy_account(db, "agent:evil@acme.example", tenant="acme")
    with db.read() as session:
        who = principal(session, LEGACY)
        assert (who.kind, who.role) == ("account", "viewer")
        evil = principal(session, "agent:evil@acme.example")
        assert (evil.kind, evil.role, evil.tenant) == ("account", "viewer", "acme")
    for action in (
        Action.WORKFLOWS_CANCEL,
        Action.APPROVALS_OVERSEE,
        Action.AGENTS_MANAGE,
        Action.USERS_MANAGE,
    ):
        assert not allowed(db, LEGACY, action)
        assert not allowed(db, "agent:evil@acme.example", action)
    assert allowed(db, LEGACY, Action.AUDIT_READ)  # its role's actions, nothing more
    with (
        db.session() as session,
        pytest.raises(NotAuthorized, match=r"may not agents:manage \(role viewer\)"),
    ):
        check(session, LEGACY, Action.AGENTS_MANAGE)


def test_an_address_is_never_a_system_actor(db: Database) -> None:
    # No account: an email approver or an OIDC user whose address starts so.
    for name in ("agent:x@example.com", "system:x@example.com", "cli:x@example.com"):
        assert not is_system_actor(name)
        with db.read() as session:
            assert principal(session, name).kind == "unknown"
        assert not allowed(db, name, Action.WORKFLOWS_CANCEL)
        assert not allowed(db, name, Action.SESSIONS_SUPERVISE)
        prefix = name.split(":")[0]
        expected = f"email: '{name}' starts with '{prefix}:', kept for system actors; use a plain address."
        assert outside_sign_in_refusal(db, name) == expected
    # The actors core makes itself still are system actors.
    for name in ("system", "cli", "cli:root", "system:timeout", "agent:pay", "system:rule:7"):
        assert is_system_actor(name)
        assert allowed(db, name, Action.WORKFLOWS_ROLLBACK)


def test_a_reserved_account_does_not_sign_in(db: Database) -> None:
    legacy_account(db)
    with pytest.raises(NotAuthorized, match="^email: 'agent:x@example.com' starts with 'agent:'"):
        sign_in(db, LEGACY, PASSWORD, address="127.0.0.1")
    # A session token made for it before (by an older version) signs nobody in.
    assert session_user(db, make_session_token(LEGACY, 0)) is None


@pytest.fixture
def chat_world(db: Database) -> Iterator[Database]:
    from core.tenants import registry as tenants

    add_user(db, ADMIN, role="admin")
    tenants.create_tenant(db, "acme", name="Acme", actor="system")
    add_user(db, "viewer@example.com", role="viewer")
    add_user(db, "amy@acme.example", role="approver", tenant="acme")
    legacy_account(db, "agent:evil@acme.example", tenant="acme")
    yield db


def test_a_reserved_account_reads_no_one_elses_chat_sessions(chat_world: Database) -> None:
    db = chat_world
    evil = "agent:evil@acme.example"
    platform_chat = chats.start_session(db, "viewer@example.com", "assistant", title="private")
    assert (person(db, evil).role, person(db, evil).tenant) == ("viewer", "acme")
    assert not person(db, evil).is_supervisor
    assert [c.id for c in chats.list_sessions(db, evil)] == []
    with pytest.raises(SessionNotFound):
        chats.full_history(db, platform_chat.id, evil)
    with pytest.raises(SessionNotFound):
        chats.take_over(db, platform_chat.id, evil)
    assert chats.get_session(db, platform_chat.id, ADMIN).status == "active"
    # The CLI and in-process code stay platform admins.
    assert person(db, "cli:root").is_supervisor


# -- the dashboard (AppTest, SQLite) ------------------------------------------------------


def test_the_dashboard_does_not_sign_in_a_reserved_account(dashboard_db: Database) -> None:  # noqa: F811
    from tests.integration.dashboard.conftest import new_app, no_exception, shown_text
    from tests.integration.dashboard.conftest import sign_in as dashboard_sign_in

    legacy_account(dashboard_db)
    at = dashboard_sign_in(new_app(), LEGACY, PASSWORD)
    no_exception(at)
    assert "email: 'agent:x@example.com' starts with 'agent:'" in shown_text(at)
    assert "signin.submit" in [b.key for b in at.button]  # still the sign-in form
