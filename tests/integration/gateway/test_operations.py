"""/healthz, /metrics and the tokens CLI."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cli.main import main
from core.approvals.engine import ApprovalEngine
from core.base.errors import NotAuthorized
from core.engine import workflows as ops
from core.identity.api_tokens import authenticate_token, hash_token, list_tokens
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApiToken, ApprovalRequest, Notification, Workflow, utcnow
from gateway.app import create_app
from tests.integration.gateway.conftest import BOSS, waiting_workflow


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_healthz(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    broken = Database(f"sqlite:///{tmp_path}/missing/dir/x.db", create_dirs=False)
    with TestClient(create_app(broken, approver_ui=False)) as down:
        response = down.get("/healthz")
        assert response.status_code == 503 and response.json()["status"] == "unavailable"
        # Any other request while the database is down is a 503, not a 500.
        assert down.get("/api/workflows", headers={"Authorization": "Bearer x"}).status_code == 503
    broken.dispose()


def test_metrics_count_requests_decisions_deliveries_and_lag(client: TestClient, db: Database) -> None:
    _, first = waiting_workflow(db)
    _, second = waiting_workflow(db)
    _, third = waiting_workflow(db)
    engine = ApprovalEngine(db)
    engine.respond_to_approval(first.id, BOSS, "approve", channel="slack")
    engine.respond_to_approval(second.id, BOSS, "reject", channel="email")
    with db.session() as session:
        # One decision took two hours.
        row = session.get_one(ApprovalRequest, second.id)
        row.created_at = row.decided_at - timedelta(hours=2)  # type: ignore[operator]
        session.add_all(
            [
                Notification(approval_id=third.id, channel="email", recipient=BOSS, status="dead"),
                Notification(approval_id=third.id, channel="slack", recipient=BOSS, status="sent"),
            ]
        )
        # A workflow runnable for a minute that no runner has claimed.
        waiting = session.get_one(Workflow, ops.list_workflows(db).rows[0].id)
        waiting.status, waiting.runnable_at = "running", utcnow() - timedelta(seconds=60)
        waiting.lease_owner = None
    found = samples(client)
    assert found[("countersign_approvals_requested_total", (("type", "binary"),))] == 3
    assert found[("countersign_approvals_pending", ())] == 1
    decided = "countersign_approvals_decided_total"
    assert found[(decided, (("channel", "slack"), ("outcome", "approved")))] == 1
    assert found[(decided, (("channel", "email"), ("outcome", "rejected")))] == 1
    assert found[("countersign_approval_decision_seconds_count", ())] == 2
    assert found[("countersign_approval_decision_seconds_bucket", (("le", "60.0"),))] == 1
    assert found[("countersign_approval_decision_seconds_bucket", (("le", "14400.0"),))] == 2
    assert 7200 <= found[("countersign_approval_decision_seconds_sum", ())] < 7300
    assert found[("countersign_deliveries", (("channel", "email"), ("status", "dead")))] == 1
    assert found[("countersign_deliveries", (("channel", "slack"), ("status", "sent")))] == 1
    assert 59 <= found[("countersign_runner_lag_seconds", ())] < 600
    # Two were answered and one was made runnable by hand: all three run.
    assert found[("countersign_workflows", (("status", "running"),))] == 3


def test_tokens_cli_prints_once_stores_a_hash_and_revokes(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    # A token acts as an account: none for ci@example.com yet, so none is made.
    with pytest.raises(SystemExit):
        main(["tokens", "create", "--for", "CI@Example.com", "--name", "deploy bot"])
    assert "No user 'ci@example.com'" in capsys.readouterr().err and list_tokens(db) == []
    add_user(db, "ci@example.com", role="service")
    main(["tokens", "create", "--for", "CI@Example.com", "--name", "deploy bot"])
    token = capsys.readouterr().out.strip()
    assert re.fullmatch(r"cs_[A-Za-z0-9_-]{40,}", token)
    [row] = list_tokens(db)
    assert (row.user_email, row.name, row.token_hash) == ("ci@example.com", "deploy bot", hash_token(token))
    with db.read() as session:  # the token itself is nowhere in the table
        assert all(token not in str(v) for v in session.get_one(ApiToken, row.id).__dict__.values())
    assert authenticate_token(db, token).user_email == "ci@example.com"
    main(["tokens", "list", "--json"])
    listed = capsys.readouterr().out
    assert '"deploy bot"' in listed and token not in listed
    main(["tokens", "revoke", str(row.id)])
    with pytest.raises(NotAuthorized, match="revoked"):
        authenticate_token(db, token)
    with pytest.raises(SystemExit) as exit_info:
        main(["tokens", "revoke", "9999"])
    assert exit_info.value.code == 3 and "No API token has the id 9999" in capsys.readouterr().err


def test_metrics_need_the_bearer_token_once_one_is_set(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The approval analytics name approvers: a gateway facing the internet hides them.
    monkeypatch.setenv("COUNTERSIGN_METRICS_TOKEN", "scrape-7f3a")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic scrape-7f3a"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert "COUNTERSIGN_METRICS_TOKEN" in response.json()["message"]
        assert "countersign_" not in response.text
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-7f3a"})
    assert response.status_code == 200
    assert "countersign_workflows" in response.text


def test_metrics_are_refused_in_production_until_a_token_is_set(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_ENV", "production")
    monkeypatch.delenv("COUNTERSIGN_METRICS_TOKEN", raising=False)
    response = client.get("/metrics")
    assert response.status_code == 403
    assert "COUNTERSIGN_METRICS_TOKEN" in response.json()["message"]
