"""Removing an account revokes at least what disabling does, on SQLite and PostgreSQL.

After ``users remove`` the address is no person without an account (whom a request
naming them lets answer): its ``user.removed`` event makes core.identity.permissions
refuse it everything, whichever way it arrives (an email link sent before, a Slack
click mapped to it, its API token), each refusal audited; nothing more is sent to
it. Adding the account again makes it an account like any other, for which nothing
issued to the removed one works (test_account_revival).
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.identity.account_state import disabled_among
from core.identity.api_tokens import create_token
from core.identity.permissions import REFUSED_EVENT, Action, allowed
from core.identity.users import add_user, remove_user
from core.store.db import Database
from core.store.tables import Notification, WorkflowEvent
from gateway.app import create_app
from gateway.browser import CSRF_FIELD
from tests.helpers.browser import form_csrf
from tests.integration.gateway.conftest import BOSS, waiting_workflow
from tests.integration.permissions.test_disabled_accounts import (  # noqa: F401  (its autouse fixture)
    channels_env,
    slack_click,
)

ADMIN = "admin@remove.test"
REFUSED = f"{BOSS} may not approvals:answer (account removed)"


def events(db: Database, event_type: str) -> list[WorkflowEvent]:
    with db.read() as session:
        return list(session.scalars(select(WorkflowEvent).where(WorkflowEvent.event_type == event_type)))


def sent_to(db: Database, approval_id: str, recipient: str) -> list[Notification]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Notification).where(
                    Notification.approval_id == approval_id, Notification.recipient == recipient
                )
            )
        )


def test_a_removed_accounts_link_slack_and_token_decide_nothing(db: Database) -> None:
    add_user(db, ADMIN, role="admin")
    add_user(db, BOSS, role="approver")
    _, token = create_token(db, BOSS, "ci")
    bearer = {"Authorization": f"Bearer {token}"}
    _, approval = waiting_workflow(db)  # asks BOSS
    link = make_link_token(approval.id, BOSS, "approve", level=0)
    with TestClient(create_app(db)) as client:
        page = client.get("/email/confirm", params={"token": link})  # opened before
        assert page.status_code == 200, page.text

        remove_user(db, BOSS, actor=ADMIN)

        done = client.post(
            "/email/confirm", data={"token": link, "decision": "approve", CSRF_FIELD: form_csrf(page.text)}
        )
        assert done.status_code == 403 and REFUSED in done.text, done.text
        assert REFUSED in slack_click(client, approval.id)
        answered = client.post(
            f"/api/approvals/{approval.id}/respond", headers=bearer, json={"decision": "approve"}
        )
        assert answered.status_code == 401
        assert [e.actor for e in events(db, REFUSED_EVENT)] == [BOSS, BOSS]
        assert all(e.data["reason"] == "account removed" for e in events(db, REFUSED_EVENT))
        assert not allowed(db, BOSS, Action.APPROVALS_ANSWER)
        assert ApprovalEngine(db).get(approval.id).status == "pending"
        assert ApprovalEngine(db).responses(approval.id) == []
        # Nothing more is sent to the address: a new request naming it queues nothing for it.
        with db.read() as session:
            assert disabled_among(session, [BOSS, "someone@else.test"]) == {BOSS}
        _, second = waiting_workflow(db)
        assert sent_to(db, second.id, BOSS) == []
        [removed] = events(db, "user.removed")
        assert (removed.actor, removed.data["user"]) == (ADMIN, BOSS)

        # Added again: an account like any other, but the link sent to the removed one
        # answers for nobody (test_account_revival), and stays unspent.
        add_user(db, BOSS, role="approver", actor=ADMIN)
        again = client.post(
            "/email/confirm", data={"token": link, "decision": "approve", CSRF_FIELD: form_csrf(page.text)}
        )
        assert again.status_code == 403 and "issued before the account was removed" in again.text
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    with db.read() as session:
        assert disabled_among(session, [BOSS]) == set()
