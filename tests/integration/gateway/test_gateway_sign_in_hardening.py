"""The gateway's /login and /approve: ended sessions and the sign-in limits, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
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
from tests.reliability.browser_sites import gateway_site

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


# -- behind a reverse proxy: the client's address, from a trusted proxy only ------------


def _lock_out_address(client: httpx.Client, forwarded_for: str) -> None:
    """Refused sign-ins from one address, each to another account (so no account locks)."""
    for n in range(users.MAX_FAILURES_PER_ADDRESS):
        refused = sign_in(
            client, f"guess{n}@example.com", "wrong", headers={"X-Forwarded-For": forwarded_for}
        )
        assert refused.status_code == 401


def test_behind_a_trusted_proxy_the_address_limit_counts_each_client(db: Database) -> None:
    """uvicorn takes the client's address from ``X-Forwarded-For`` when the peer is a
    trusted proxy (``FORWARDED_ALLOW_IPS``, default 127.0.0.1, a proxy on this host):
    one client's guessing locks that client out, not everyone behind the proxy."""
    users.add_user(db, BOSS, password=PASSWORD)
    with gateway_site(db) as gateway:
        with httpx.Client(base_url=gateway) as guesser:
            _lock_out_address(guesser, "203.0.113.9")
            locked = sign_in(guesser, BOSS, PASSWORD, headers={"X-Forwarded-For": "203.0.113.9"})
            assert locked.status_code == 401 and "Too many failed sign-ins" in locked.text
        with httpx.Client(base_url=gateway) as colleague:  # through the same proxy
            welcome = sign_in(colleague, BOSS, PASSWORD, headers={"X-Forwarded-For": "198.51.100.7"})
            assert welcome.status_code == 303, welcome.text


def test_an_untrusted_peer_cannot_name_another_address_to_dodge_the_limit(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that is not a trusted proxy is counted by its own address, whatever
    ``X-Forwarded-For`` it sends: a fresh address per guess evades nothing."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "192.0.2.1")  # some proxy, not this client
    users.add_user(db, BOSS, password=PASSWORD)
    with gateway_site(db) as gateway, httpx.Client(base_url=gateway) as client:
        for n in range(users.MAX_FAILURES_PER_ADDRESS):
            headers = {"X-Forwarded-For": f"203.0.113.{n + 1}"}
            assert sign_in(client, f"guess{n}@example.com", "wrong", headers=headers).status_code == 401
        locked = sign_in(client, BOSS, PASSWORD, headers={"X-Forwarded-For": "198.51.100.7"})
        assert locked.status_code == 401 and "Too many failed sign-ins" in locked.text
