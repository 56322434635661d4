"""Sign-in hardening: ended sessions, removed accounts and the sign-in limits,
on SQLite and PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

import core.identity.users as users
from core.base.errors import NotAuthorized
from core.identity.api_tokens import authenticate_token, create_token
from core.identity.browser_sessions import read_session_token
from core.store.db import Database
from core.store.tables import WorkflowEvent, utcnow


def _events(db: Database, event_type: str) -> list[WorkflowEvent]:
    with db.read() as session:
        return list(
            session.scalars(select(WorkflowEvent).where(WorkflowEvent.event_type == event_type)).all()
        )


@pytest.fixture
def alice(db: Database) -> str:
    users.add_user(db, "alice@example.com", role="approver", password="right-password")
    return "alice@example.com"


def _token(db: Database, email: str) -> str:
    return users.session_token(users.get_user(db, email))


def test_a_fresh_session_is_accepted(db: Database, alice: str) -> None:
    token = _token(db, alice)
    user = users.session_user(db, token)
    assert user is not None and user.email == alice


def test_the_session_of_a_removed_user_is_refused(db: Database, alice: str) -> None:
    token = _token(db, alice)
    users.remove_user(db, alice)
    assert read_session_token(token) == alice  # the signature alone is still good
    assert users.session_user(db, token) is None
    assert _events(db, "user.removed")


def test_the_api_token_of_a_removed_user_is_refused(db: Database, alice: str) -> None:
    _, secret = create_token(db, alice, "ci", actor="system")
    assert authenticate_token(db, secret).user_email == alice
    users.remove_user(db, alice)  # deletes its tokens
    with pytest.raises(NotAuthorized, match="That API token is not valid"):
        authenticate_token(db, secret)


@pytest.mark.parametrize("change", ["password", "role", "logout_everywhere"])
def test_a_change_ends_the_sessions_made_before(db: Database, alice: str, change: str) -> None:
    token = _token(db, alice)
    if change == "password":
        users.add_user(db, alice, role="approver", password="new-password")
    elif change == "role":
        users.add_user(db, alice, role="viewer")
    else:
        users.end_sessions(db, alice, actor=alice)
    assert users.session_user(db, token) is None
    fresh = _token(db, alice)
    assert users.session_user(db, fresh) is not None


def test_an_unchanged_update_keeps_the_sessions(db: Database, alice: str) -> None:
    token = _token(db, alice)
    users.add_user(db, alice, role="approver", name="Alice")
    assert users.session_user(db, token) is not None


def test_thirty_wrong_passwords_lock_the_account_until_the_window_passes(
    db: Database, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [utcnow()]
    monkeypatch.setattr(users, "_now", lambda: now[0])
    for _ in range(30):
        with pytest.raises(NotAuthorized):
            users.sign_in(db, alice, "wrong", address="203.0.113.9")
    with pytest.raises(NotAuthorized, match="Too many"):
        users.sign_in(db, alice, "right-password", address="198.51.100.1")
    refused = _events(db, "auth.sign_in_refused")
    assert len(refused) == 31
    assert {e.data["reason"] for e in refused} == {"wrong email or password", "locked"}
    assert all(e.workflow_id is None for e in refused)
    locks = _events(db, "auth.sign_in_locked")
    assert {e.data["limit"] for e in locks} == {"account", "address"}
    # Another account from the locked address is refused too (20 per address).
    users.add_user(db, "bob@example.com", role="approver", password="bob-password")
    with pytest.raises(NotAuthorized, match="Too many"):
        users.sign_in(db, "bob@example.com", "bob-password", address="203.0.113.9")
    # Once the window has passed, the right password signs in.
    now[0] = now[0] + users.FAILURE_WINDOW + timedelta(seconds=1)
    assert users.sign_in(db, alice, "right-password", address="203.0.113.9").email == alice


def test_fewer_failures_than_the_limit_do_not_lock(db: Database, alice: str) -> None:
    for _ in range(users.MAX_FAILURES_PER_ACCOUNT - 1):
        with pytest.raises(NotAuthorized):
            users.sign_in(db, alice, "wrong", address="203.0.113.9")
    assert users.sign_in(db, alice, "right-password", address="203.0.113.9").email == alice


def test_the_cli_signs_an_account_out_everywhere(
    db: Database, alice: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    token = _token(db, alice)
    monkeypatch.setenv("DATABASE_URL", db_url)
    result = CliRunner().invoke(app, ["users", "logout-everywhere", alice, "--as", "system"])
    assert result.exit_code == 0, result.output
    assert users.session_user(db, token) is None
