"""``python -m core tenants ...`` and tenant isolation through the real CLI,
as subprocesses, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.store.db import Database
from core.store.tables import TenantSecret
from tests.acceptance.core.conftest import CLI_TIMEOUT, ROOT, cli, cli_env, cli_json
from tests.integration.tenants.conftest import build
from tests.integration.tenants.test_isolation import votes_on

pytestmark = pytest.mark.timeout(900)
KEY_VALUE = "sk-cli-secret-0123456789"


def run(
    db_url: str, *args: str, stdin: str | None = None, ok: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    """One command with extra environment and standard input."""
    done = subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=cli_env(db_url, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert (done.returncode == 0) == ok, f"{args}: {done.stdout} {done.stderr}"
    if not ok:
        assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    return done


def test_tenant_a_cannot_list_read_or_answer_b_from_the_cli(db_url: str) -> None:
    db = Database(db_url)
    try:
        scene = build(db)
    finally:
        db.dispose()
    a, b = scene.a, scene.b
    as_a = ("--as", a.approver)
    assert [r["id"] for r in cli_json(db_url, "approvals", "list", *as_a)] == [a.approval_id]
    assert [r["id"] for r in cli_json(db_url, "approvals", "list", "--for", a.approver)] == [a.approval_id]
    listed = cli_json(db_url, "workflow", "list", *as_a)
    assert (listed["total"], [w["id"] for w in listed["workflows"]]) == (1, [a.workflow_id])

    unknown_id = str(uuid.uuid4())
    unknown = cli(db_url, "approvals", "show", unknown_id, *as_a, ok=False).stderr
    other = cli(db_url, "approvals", "show", b.approval_id, *as_a, ok=False).stderr
    assert other.replace(b.approval_id, "<id>") == unknown.replace(unknown_id, "<id>")
    answered = cli(
        db_url, "approvals", "respond", b.approval_id, "--decision", "approve", *as_a, ok=False
    ).stderr
    assert answered.replace(b.approval_id, "<id>") == unknown.replace(unknown_id, "<id>")
    assert "No workflow has the id" in cli(db_url, "workflow", "show", b.workflow_id, *as_a, ok=False).stderr
    db = Database(db_url)
    try:
        assert ApprovalEngine(db).get(b.approval_id).status == "pending"
        assert votes_on(db, b.approval_id) == 0
    finally:
        db.dispose()

    # A's own request: shown and answered.
    assert cli_json(db_url, "approvals", "show", a.approval_id, *as_a)["title"] == "Pay the alpha invoice"
    assert (
        cli(db_url, "approvals", "respond", a.approval_id, "--decision", "approve", *as_a).stdout.strip()
        == f"{a.approval_id} approved"
    )
    # The platform (no --as) sees both tenants' workflows.
    assert cli_json(db_url, "workflow", "list")["total"] == 2


def test_tenants_flows_and_secrets_commands(db_url: str) -> None:
    key = Fernet.generate_key().decode()
    assert (
        run(db_url, "tenants", "create", "acme", "--name", "Acme Corp").stdout.strip()
        == "tenant acme created"
    )
    run(db_url, "tenants", "create", "Bad Slug", ok=False)
    assert [t["slug"] for t in cli_json(db_url, "tenants", "list")] == ["acme"]

    run(
        db_url,
        "tenants",
        "flows",
        "add",
        "acme",
        "support",
        "--tool",
        "send_confirmation",
        "--parameters",
        '{"max_steps": 4}',
        "--description",
        "Customer support",
    )
    refused = run(
        db_url,
        "tenants",
        "flows",
        "add",
        "acme",
        "x",
        "--agent-type",
        "planner",
        "--tool",
        "launch",
        ok=False,
    ).stderr
    assert "agent_type: must be one of tool_calling, code" in refused and "tools[0]: 'launch'" in refused
    assert [f["name"] for f in cli_json(db_url, "tenants", "flows", "list", "acme")] == ["support"]

    # Secrets: from stdin, never echoed, stored encrypted; without a key, a plain refusal.
    refused = run(
        db_url, "tenants", "secrets", "set", "acme", "model_api_key", stdin=KEY_VALUE, ok=False
    ).stderr
    assert "COUNTERSIGN_SECRETS_KEY is not set" in refused
    stored = run(
        db_url,
        "tenants",
        "secrets",
        "set",
        "acme",
        "model_api_key",
        stdin=KEY_VALUE + "\n",
        COUNTERSIGN_SECRETS_KEY=key,
    )
    assert KEY_VALUE not in stored.stdout + stored.stderr
    listed = run(db_url, "tenants", "secrets", "list", "acme", "--json").stdout
    assert KEY_VALUE not in listed and [s["name"] for s in json.loads(listed)] == ["model_api_key"]
    shown = run(db_url, "tenants", "show", "acme", "--json").stdout
    assert KEY_VALUE not in shown and json.loads(shown)["secrets"][0]["value"] == "••••••••"
    db = Database(db_url)
    try:
        with db.read() as session:
            [ciphertext] = session.scalars(select(TenantSecret.ciphertext)).all()
        assert KEY_VALUE not in ciphertext
        assert Fernet(key.encode()).decrypt(ciphertext.encode()).decode() == KEY_VALUE
    finally:
        db.dispose()

    run(db_url, "tenants", "model", "acme", "--settings", '{"model_id": "acme-model"}')
    run(db_url, "tenants", "model", "acme", "--settings", '{"api_key": "sk-in-clear"}', ok=False)
    run(db_url, "users", "add", "amy@acme.test", "--tenant", "acme", "--password", "pw-123456")
    run(db_url, "users", "add", "zed@none.test", "--tenant", "nope", "--password", "pw", ok=False)
    assert (
        "amy@acme.test model settings: {'model_id': 'amy-model'}"
        in run(
            db_url,
            "tenants",
            "user-model",
            "amy@acme.test",
            "--settings",
            '{"model_id": "amy-model"}',
            "--as",
            "amy@acme.test",
        ).stdout
    )
    assert "users (1)" in run(db_url, "tenants", "delete", "acme", ok=False).stderr
    run(db_url, "tenants", "create", "spare")
    run(db_url, "tenants", "flows", "remove", "acme", "support")
    run(db_url, "tenants", "secrets", "delete", "acme", "model_api_key")
    assert cli_json(db_url, "tenants", "secrets", "list", "acme") == []
    run(db_url, "tenants", "delete", "spare")
    assert [t["slug"] for t in cli_json(db_url, "tenants", "list")] == ["acme"]
