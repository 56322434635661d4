"""The standing-rule and out-of-office interfaces: REST ``allow_for_days`` and the CLI
(``approvals respond --allow-for-days``, ``rules``, ``ooo``), on real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from core.approvals import standing_rules
from core.approvals.engine import ApprovalEngine
from core.identity.users import add_user
from core.store.db import Database
from gateway.app import create_app
from tests.helpers.approved_calls import FINANCE, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.integration.gateway.conftest import token_for

ROOT = Path(__file__).resolve().parents[3]
ADMIN = "rules-admin@example.com"


def test_rest_answer_with_allow_creates_the_rule(db: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(db, registry)
    headers = token_for(db, FINANCE, role="admin")
    with TestClient(create_app(db, approver_ui=False)) as client:
        refused = client.post(
            f"/api/approvals/{approval.id}/respond",
            headers=headers,
            json={"decision": "approve", "allow_for_days": 7, "allow_when": "args.amount <"},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "InvalidRule"
        assert refused.json()["problems"][0].startswith("allow_when: not a valid expression")
        assert ApprovalEngine(db).get(approval.id).status == "pending"
        answered = client.post(
            f"/api/approvals/{approval.id}/respond",
            headers=headers,
            json={"decision": "approve", "allow_for_days": 3, "allow_when": "args.amount <= 20000"},
        )
        assert answered.status_code == 200, answered.text
    [rule] = standing_rules.list_rules(db, FINANCE)
    assert (rule["tool"], rule["condition"], rule["source_approval_id"]) == (
        "pay",
        "args.amount <= 20000",
        approval.id,
    )
    run(db, registry)
    assert len(calls.of("pay")) == 1


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "COUNTERSIGN_DEMO": "off"}
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_rules_and_out_of_office(sqlite_db: Database, sqlite_url: str) -> None:
    db = sqlite_db
    add_user(db, ADMIN, role="admin")
    add_user(db, FINANCE, role="approver")
    add_user(db, "deputy@example.com", role="approver")
    created = _cli(
        sqlite_url,
        "rules",
        "create",
        "--tool",
        "pay",
        "--when",
        "args.amount <= 200",
        "--days",
        "5",
        "--as",
        ADMIN,
        "--json",
    )
    assert created.returncode == 0, created.stderr
    rule = json.loads(created.stdout)
    assert (rule["tool"], rule["state"], rule["created_by"]) == ("pay", "active", ADMIN)
    refused = _cli(sqlite_url, "rules", "create", "--tool", "pay", "--when", "amount < 1", "--as", ADMIN)
    assert refused.returncode == 2  # an Invalid error's exit code
    assert "condition: unknown name 'amount'" in refused.stderr + refused.stdout
    not_allowed = _cli(sqlite_url, "rules", "revoke", str(rule["id"]), "--as", FINANCE)
    assert not_allowed.returncode == 5  # Forbidden
    assert "policies:manage" in not_allowed.stderr + not_allowed.stdout
    edited = _cli(
        sqlite_url, "rules", "edit", str(rule["id"]), "--when", "args.amount <= 300", "--as", ADMIN, "--json"
    )
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout)["condition"] == "args.amount <= 300"
    listed = _cli(sqlite_url, "rules", "list", "--as", FINANCE)
    assert listed.returncode == 0 and "args.amount <= 300" in listed.stdout
    revoked = _cli(sqlite_url, "rules", "revoke", str(rule["id"]), "--as", ADMIN)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert standing_rules.list_rules(db, ADMIN) == []

    away = _cli(
        sqlite_url, "ooo", "set", "--until", "2099-01-01", "--delegate", "deputy@example.com", "--as", FINANCE
    )
    assert away.returncode != 0 and "until: at most 366 days" in away.stderr + away.stdout
    from datetime import timedelta

    from core.store.tables import utcnow

    until = (utcnow() + timedelta(days=3)).date().isoformat()
    away = _cli(
        sqlite_url, "ooo", "set", "--until", until, "--delegate", "deputy@example.com", "--as", FINANCE
    )
    assert away.returncode == 0, away.stderr
    listed = _cli(sqlite_url, "ooo", "list", "--as", ADMIN, "--json")
    [row] = json.loads(listed.stdout)
    assert (row["person"], row["delegate"]) == (FINANCE, "deputy@example.com")
    back = _cli(sqlite_url, "ooo", "clear", "--as", FINANCE)
    assert back.returncode == 0 and "is back" in back.stdout
