"""The gateway's /login and /approve: ended sessions and the sign-in limits, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import core.identity.users as users
from core.identity.browser_sessions import SESSION_COOKIE
from core.store.db import Database
from core.store.tables import WorkflowEvent
from gateway.app import create_app
from tests.helpers.browser import sign_in, sign_out
from tests.integration.gateway.conftest import BOSS

PASSWORD = "correct horse battery"


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    users.add_user(db, BOSS, password=PASSWORD)
    with TestClient(create_app(db)) as test_client:
        yield test_client


def test_logout_ends_the_session_server_side(client: TestClient, db: Database) -> None:
    sign_in(client, BOSS, PASSWORD, "/approve/")
    cookie = client.cookies.get(SESSION_COOKIE)
    assert client.get("/approve/config").status_code == 200
    assert sign_out(client).status_code == 200  # followed to /login
    client.cookies.set(SESSION_COOKIE, cookie)  # a copy kept elsewhere
    assert client.get("/approve/config").status_code == 401


@pytest.mark.parametrize("change", ["password", "role", "removal", "logout_everywhere"])
def test_a_change_ends_the_approve_session(client: TestClient, db: Database, change: str) -> None:
    sign_in(client, BOSS, PASSWORD, "/approve/")
    assert client.get("/approve/config").status_code == 200
    {
        "password": lambda: users.add_user(db, BOSS, password="another one"),
        "role": lambda: users.add_user(db, BOSS, role="viewer"),
        "removal": lambda: users.remove_user(db, BOSS),
        "logout_everywhere": lambda: users.end_sessions(db, BOSS),
    }[change]()
    assert client.get("/approve/config").status_code == 401


def test_login_is_locked_after_repeated_failures(client: TestClient, db: Database) -> None:
    for _ in range(users.MAX_FAILURES_PER_ACCOUNT):
        assert sign_in(client, BOSS, "wrong").status_code == 401
    locked = sign_in(client, BOSS, PASSWORD)
    assert locked.status_code == 401 and "Too many failed sign-ins" in locked.text
    with db.read() as session:
        count = session.scalar(
            select(func.count())
            .select_from(WorkflowEvent)
            .where(WorkflowEvent.event_type == "auth.sign_in_locked")
        )
    assert count == 1
