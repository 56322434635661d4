"""Nothing issued to a removed account works for the account added again under its
address (core.identity.issued), on SQLite and PostgreSQL.

Removing an account deletes its API tokens (not only refuses them); a session ended by
logging out everywhere, or by the removal, stays ended when the address is added again
(whatever password and role the new account has); an email link sent before the
removal, and a Slack user linked to the address before it (SLACK_USER_MAP, or the
Settings map saved before), answer for nobody. What is issued to the new account
works as usual. Each refusal names why and is audited.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from itsdangerous.timed import TimestampSigner
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.channels.registry import store_channel_settings
from core.identity.api_tokens import create_token, list_tokens
from core.identity.browser_sessions import make_session_token
from core.identity.permissions import REFUSED_EVENT
from core.identity.users import add_user, end_sessions, get_user, remove_user, session_token, session_user
from core.store.db import Database
from core.store.tables import ApiToken, WorkflowEvent
from gateway.app import create_app
from gateway.browser import CSRF_FIELD
from tests.helpers.browser import form_csrf, sign_in
from tests.integration.gateway.conftest import BOSS, waiting_workflow
from tests.integration.permissions.test_disabled_accounts import (  # noqa: F401  (its autouse fixture)
    BOSS_SLACK,
    SIGNING_SECRET,
    channels_env,
    slack_click,
)

ADMIN = "admin@revival.test"
PASSWORD = "revival-old-password"
NEW_PASSWORD = "revival-brand-new-password"


def events(db: Database, event_type: str) -> list[WorkflowEvent]:
    with db.read() as session:
        query = select(WorkflowEvent).where(WorkflowEvent.event_type == event_type)
        return list(session.scalars(query.order_by(WorkflowEvent.id)).all())


def refusals(db: Database) -> list[tuple[str, str]]:
    return [(e.actor, e.data["reason"]) for e in events(db, REFUSED_EVENT)]


@pytest.fixture
def world(db: Database) -> Database:
    add_user(db, ADMIN, role="admin")
    add_user(db, BOSS, role="approver", password=PASSWORD)
    return db


@contextmanager
def clock_ahead(seconds: int) -> Iterator[None]:
    """Links signed meanwhile say they were made ``seconds`` later (a link's time is
    whole seconds: one made in the second of a removal counts as made before it)."""
    real = TimestampSigner.get_timestamp
    TimestampSigner.get_timestamp = lambda self: int(time.time()) + seconds  # type: ignore[method-assign]
    try:
        yield
    finally:
        TimestampSigner.get_timestamp = real  # type: ignore[method-assign]


def link_in_settings(db: Database) -> None:
    """An admin saves the Slack settings with BOSS_SLACK linked to BOSS."""
    store_channel_settings(db, "slack", enabled=True, settings={"user_map": {BOSS: BOSS_SLACK}}, actor=ADMIN)


# -- API tokens ------------------------------------------------------------------------


def test_removing_an_account_deletes_its_tokens_and_they_never_answer_again(world: Database) -> None:
    db = world
    _, token = create_token(db, BOSS, "laptop")
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(db)) as client:
        assert client.get("/api/me", headers=bearer).status_code == 200

        remove_user(db, BOSS, actor=ADMIN)

        assert list_tokens(db, BOSS) == []  # gone with the row, as the README says
        [removed] = events(db, "user.removed")
        assert removed.data == {"user": BOSS, "tokens": 1}
        assert client.get("/api/me", headers=bearer).status_code == 401

        add_user(db, BOSS, role="approver", password="another-person-789", actor=ADMIN)

        me = client.get("/api/me", headers=bearer)
        assert me.status_code == 401, me.text
        assert me.json()["message"] == "That API token is not valid."
        # A token made for the new account works.
        _, fresh = create_token(db, BOSS, "new laptop")
        assert client.get("/api/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_a_token_left_from_a_removed_account_is_refused_for_the_new_one(world: Database) -> None:
    """A row an older version left behind (it kept tokens of removed accounts) acts as
    nobody once the address has an account again: refused, with an event."""
    db = world
    row, token = create_token(db, BOSS, "old laptop")
    kept = {c: getattr(row, c) for c in ("name", "token_hash", "user_email", "scopes", "created_at")}
    remove_user(db, BOSS, actor=ADMIN)
    with db.session() as session:
        session.add(ApiToken(**kept, updated_at=kept["created_at"]))
    add_user(db, BOSS, role="admin", password=NEW_PASSWORD, actor=ADMIN)
    with TestClient(create_app(db)) as client:
        me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401, me.text
    assert "was made for the account of boss@example.com removed" in me.json()["message"]
    assert "not for the account added since" in me.json()["message"]
    [refused] = events(db, "auth.token_refused")
    assert refused.data["reason"] == "made for an account removed since"
    assert refused.data["token"] == "old laptop"


# -- browser sessions ------------------------------------------------------------------


def test_an_ended_session_stays_ended_when_the_address_is_added_again(world: Database) -> None:
    db = world
    with TestClient(create_app(db)) as client:
        sign_in(client, BOSS, PASSWORD, "/approve/")
        assert client.get("/approve/config").status_code == 200
        dashboard = session_token(get_user(db, BOSS))  # the dashboard's cookie (same key)
        assert session_user(db, dashboard) is not None

        end_sessions(db, BOSS, actor=ADMIN)  # users logout-everywhere
        assert client.get("/approve/config").status_code == 401
        remove_user(db, BOSS, actor=ADMIN)
        assert client.get("/approve/config").status_code == 401
        add_user(db, BOSS, role="admin", password=NEW_PASSWORD, actor=ADMIN)

        # The new account starts at session version 0, as the stolen cookies' was.
        assert get_user(db, BOSS).session_version == 0
        assert client.get("/approve/config").status_code == 401
        assert session_user(db, dashboard) is None
        # The new account signs in as usual.
        sign_in(client, BOSS, NEW_PASSWORD, "/approve/")
        assert client.get("/approve/config").status_code == 200
        assert session_user(db, session_token(get_user(db, BOSS))) is not None


def test_a_removal_alone_ends_the_session_for_good(world: Database) -> None:
    db = world
    cookie = session_token(get_user(db, BOSS))
    remove_user(db, BOSS, actor=ADMIN)
    add_user(db, BOSS, role="approver", password=NEW_PASSWORD, actor=ADMIN)
    assert session_user(db, cookie) is None


def test_a_session_token_that_names_no_account_row_is_refused(world: Database) -> None:
    """Tokens made before sessions named their account row (an older version's):
    refused, so one cookie of a removed account cannot pass as a new one's."""
    db = world
    user = get_user(db, BOSS)
    assert session_user(db, make_session_token(BOSS, user.session_version)) is None
    assert session_user(db, session_token(user)) is not None


# -- email links -----------------------------------------------------------------------


def test_an_email_link_sent_before_a_removal_answers_for_nobody(world: Database) -> None:
    db = world
    _, approval = waiting_workflow(db)  # asks BOSS
    link = make_link_token(approval.id, BOSS, "approve", level=0)
    with TestClient(create_app(db)) as client:
        page = client.get("/email/confirm", params={"token": link})
        assert page.status_code == 200, page.text
        remove_user(db, BOSS, actor=ADMIN)
        add_user(db, BOSS, role="approver", password=NEW_PASSWORD, actor=ADMIN)

        done = client.post(
            "/email/confirm", data={"token": link, "decision": "approve", CSRF_FIELD: form_csrf(page.text)}
        )
        assert done.status_code == 403, done.text
        assert (
            f"{BOSS} may not approvals:answer (this email link was issued before the account was removed on "
            in done.text
        )
        assert ApprovalEngine(db).get(approval.id).status == "pending"
        assert ApprovalEngine(db).responses(approval.id) == []
        [(actor, reason)] = refusals(db)
        assert actor == BOSS and "was issued before the account was removed" in reason
        [event] = events(db, REFUSED_EVENT)
        assert event.approval_id == approval.id

        # A link sent to the new account answers.
        with clock_ahead(2):
            fresh = make_link_token(approval.id, BOSS, "approve", level=0)
            page = client.get("/email/confirm", params={"token": fresh})
            again = client.post(
                "/email/confirm",
                data={"token": fresh, "decision": "approve", CSRF_FIELD: form_csrf(page.text)},
            )
        assert again.status_code == 200 and "You approved" in again.text, again.text


def test_a_link_to_an_address_never_removed_still_answers(world: Database) -> None:
    """The check costs nothing to the usual case: a person without an account whose
    account is made later, or an account never removed."""
    db = world
    _, approval = waiting_workflow(db)
    link = make_link_token(approval.id, BOSS, "approve", level=0)
    with TestClient(create_app(db)) as client:
        page = client.get("/email/confirm", params={"token": link})
        done = client.post(
            "/email/confirm", data={"token": link, "decision": "approve", CSRF_FIELD: form_csrf(page.text)}
        )
    assert done.status_code == 200 and "You approved" in done.text, done.text
    assert refusals(db) == []


# -- Slack links -----------------------------------------------------------------------


def test_a_slack_user_linked_by_slack_user_map_answers_for_nobody_after_a_removal(world: Database) -> None:
    db = world  # channels_env: SLACK_USER_MAP links BOSS_SLACK to BOSS
    _, approval = waiting_workflow(db)
    remove_user(db, BOSS, actor=ADMIN)
    add_user(db, BOSS, role="approver", password=NEW_PASSWORD, actor=ADMIN)
    with TestClient(create_app(db)) as client:
        text = slack_click(client, approval.id)
        assert text.startswith(f"{BOSS} may not approvals:answer (the slack link of {BOSS_SLACK} ")
        assert "(SLACK_USER_MAP) was made before the account was removed and added again" in text
        assert "an admin links the Slack user again in Settings" in text
        assert ApprovalEngine(db).responses(approval.id) == []
        [(actor, reason)] = refusals(db)
        assert actor == BOSS and reason.startswith(f"the slack link of {BOSS_SLACK} (SLACK_USER_MAP)")

        # Linked again in Settings once the account is back: the click answers.
        store_channel_settings(
            db, "slack", enabled=True, settings={"user_map": {BOSS: BOSS_SLACK}}, actor=ADMIN
        )
        assert slack_click(client, approval.id).startswith("You approved")


def test_a_settings_link_saved_before_a_removal_answers_for_nobody(
    world: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = world
    monkeypatch.delenv("SLACK_USER_MAP")
    link_in_settings(db)
    _, approval = waiting_workflow(db)
    with TestClient(create_app(db)) as client:
        remove_user(db, BOSS, actor=ADMIN)
        add_user(db, BOSS, role="approver", password=NEW_PASSWORD, actor=ADMIN)
        text = slack_click(client, approval.id)
        assert "(the Slack settings' user_map) was made before the account was removed" in text
        assert ApprovalEngine(db).responses(approval.id) == []
        # /approvals lists nothing for it either.
        assert "was made before the account was removed" in slack_command(client)

        store_channel_settings(
            db, "slack", enabled=True, settings={"user_map": {BOSS: BOSS_SLACK}}, actor=ADMIN
        )
        assert slack_click(client, approval.id).startswith("You approved")
    assert [r for _, r in refusals(db)] == [
        f"the slack link of {BOSS_SLACK} (the Slack settings' user_map) was made before the account "
        f"was removed and added again on {get_user(db, BOSS).created_at:%Y-%m-%d %H:%M} UTC"
    ] * 2


def slack_command(client: TestClient, user_id: str = BOSS_SLACK) -> str:
    """``/approvals`` as the Slack user ``user_id``: the reply's text."""
    body = urlencode({"command": "/approvals", "user_id": user_id})
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    response = client.post(
        "/slack/commands",
        content=body,
        headers={
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": str(signature),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["text"]).replace("\u200b", "")


def test_nothing_changes_for_an_account_never_removed(world: Database) -> None:
    db = world
    _, token = create_token(db, BOSS, "ci")
    _, approval = waiting_workflow(db)
    with TestClient(create_app(db)) as client:
        assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert slack_click(client, approval.id).startswith("You approved")
    assert session_user(db, session_token(get_user(db, BOSS))) is not None
    assert refusals(db) == []
