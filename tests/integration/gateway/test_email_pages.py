"""Email links: GET shows a confirmation page and decides nothing; POST decides once."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token
from core.engine import workflows as ops
from core.runtime import build_runner
from core.store.db import Database
from tests.helpers.browser import answer_form
from tests.integration.gateway.conftest import BOSS, waiting_workflow

CONFIRM = "/email/confirm"


@pytest.fixture(autouse=True)
def link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "gateway-tests-link-secret")


def form_token(html: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_get_shows_the_page_and_decides_nothing_post_decides(client: TestClient, db: Database) -> None:
    workflow_id, approval = waiting_workflow(db)
    token = make_link_token(approval.id, BOSS, "approve")
    for _ in range(3):  # a mail scanner, a preview, the person
        page = client.get(CONFIRM, params={"token": token})
        assert page.status_code == 200, page.text
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    assert ApprovalEngine(db).responses(approval.id) == []
    html = page.text
    # The title and description are escaped, never markup.
    assert "Ship release &lt;b&gt;1.2&lt;/b&gt;" in html and "<b>1.2</b>" not in html
    assert "Deploy &amp; tell &lt;users&gt;" in html
    assert 'value="approve"' in html and 'value="reject"' not in html
    assert page.headers["cache-control"] == "no-store"

    done = client.post(
        CONFIRM, data={**answer_form(form_token(html)), "decision": "approve", "comment": "looks fine"}
    )
    assert done.status_code == 200, done.text
    assert "You approved" in done.text
    decided = ApprovalEngine(db).get(approval.id)
    assert (decided.status, decided.decided_by) == ("approved", BOSS)
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.channel, vote.comment) == ("email", "looks fine")
    build_runner(db).run_until_idle()
    assert ops.get_workflow(db, workflow_id).status == "completed"

    again = client.post(CONFIRM, data={**answer_form(token), "decision": "approve"})
    assert again.status_code == 410 and "already been used" in again.text
    assert client.get(CONFIRM, params={"token": token}).status_code == 410


def test_a_link_without_a_decision_offers_both_and_rejects(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(db)
    token = make_link_token(approval.id, BOSS)
    html = client.get(CONFIRM, params={"token": token}).text
    assert 'value="approve"' in html and 'value="reject"' in html
    missing = client.post(CONFIRM, data={**answer_form(token)})
    assert missing.status_code == 422 and "choose approve or reject" in missing.text
    done = client.post(CONFIRM, data={**answer_form(token), "decision": "reject", "comment": "no"})
    assert done.status_code == 200 and "You rejected" in done.text
    assert ApprovalEngine(db).get(approval.id).status == "rejected"


def test_tampered_and_expired_tokens_are_refused(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(db)
    token = make_link_token(approval.id, BOSS, "approve")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for response in (
        client.get(CONFIRM, params={"token": tampered}),
        client.post(CONFIRM, data={**answer_form(tampered), "decision": "approve"}),
        client.get(CONFIRM, params={"token": ""}),
    ):
        assert response.status_code == 400 and "not valid" in response.text
    expired = make_link_token(approval.id, BOSS, "approve", max_age=1)
    time.sleep(2.1)
    for response in (
        client.get(CONFIRM, params={"token": expired}),
        client.post(CONFIRM, data={**answer_form(expired), "decision": "approve"}),
    ):
        assert response.status_code == 410 and "expired" in response.text
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_a_link_for_someone_not_asked_is_refused_and_stays_unspent(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(db)
    token = make_link_token(approval.id, "intruder@example.com", "approve")
    refused = client.post(CONFIRM, data={**answer_form(token), "decision": "approve"})
    assert refused.status_code == 403 and "not an approver" in refused.text
    assert ApprovalEngine(db).get(approval.id).status == "pending"
    # A decision link cannot be turned into the other decision.
    boss_token = make_link_token(approval.id, BOSS, "approve")
    assert client.post(CONFIRM, data={**answer_form(boss_token), "decision": "reject"}).status_code == 400
    assert client.post(CONFIRM, data={**answer_form(boss_token)}).status_code == 200


def test_form_approvals_go_to_the_dashboard(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(
        db, {"type": "form", "form_fields": [{"name": "verdict", "type": "string", "required": True}]}
    )
    token = make_link_token(approval.id, BOSS)
    for response in (
        client.get(CONFIRM, params={"token": token}, follow_redirects=False),
        client.post(CONFIRM, data={**answer_form(token), "decision": "approve"}, follow_redirects=False),
    ):
        assert response.status_code == 303
        assert approval.id in response.headers["location"]
    assert ApprovalEngine(db).get(approval.id).status == "pending"


def test_already_decided_request_shows_who_decided(client: TestClient, db: Database) -> None:
    _, approval = waiting_workflow(db)
    ApprovalEngine(db).respond_to_approval(approval.id, BOSS, "approve", channel="api")
    page = client.get(CONFIRM, params={"token": make_link_token(approval.id, BOSS, "approve")})
    assert page.status_code == 409 and "already approved by boss@example.com" in page.text
