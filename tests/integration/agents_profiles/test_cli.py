"""``python -m core agents ...`` as a person runs it: a subprocess per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database

REPO = Path(__file__).resolve().parents[3]


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "core", "agents", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def said(stderr: str) -> list[str]:
    """What the command said on stderr, without structured log records (JSON lines)."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def ok(url: str, *args: str) -> str:
    done = cli(url, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def admins(url: str, *emails: str) -> None:
    """Profiles are changed by platform admins (agents:manage): give the --as names accounts."""
    db = Database(url)
    try:
        for email in emails:
            add_user(db, email, role="admin")
    finally:
        db.dispose()


def test_each_agents_command_and_a_refusal(sqlite_url: str) -> None:
    admins(sqlite_url, "admin@example.com", "ops@example.com")
    assert (
        ok(
            sqlite_url,
            "create",
            "checker",
            "--role",
            "Order checker",
            "--instructions",
            "Check first.",
            "--provider",
            "rehearsal",
            "--tool",
            "validate_order",
            "--held-tool",
            "charge_payment",
            "--max-steps",
            "6",
            "--settings",
            '{"approval": {"requested_from": "finance@example.com"}}',
            "--as",
            "admin@example.com",
        )
        == "agent profile checker created\n"
    )
    listing = ok(sqlite_url, "list")
    assert listing.splitlines()[0].split() == ["NAME", "ROLE", "TYPE", "PROVIDER", "MODEL", "TOOLS", "HELD"]
    assert "checker" in listing and "charge_payment" in listing
    [listed] = json.loads(ok(sqlite_url, "list", "--json"))
    assert (listed["name"], listed["max_steps"], listed["created_by"]) == ("checker", 6, "admin@example.com")
    assert (
        ok(
            sqlite_url,
            "edit",
            "checker",
            "--max-steps",
            "4",
            "--model",
            "llama3.1",
            "--as",
            "ops@example.com",
        )
        == "agent profile checker updated\n"
    )
    shown = json.loads(ok(sqlite_url, "show", "checker", "--json"))
    assert (shown["max_steps"], shown["model_id"], shown["role"], shown["settings"]) == (
        4,
        "llama3.1",
        "Order checker",
        {"approval": {"requested_from": "finance@example.com"}},
    )
    assert "role: Order checker" in ok(sqlite_url, "show", "checker")

    # Refusals: one line on stderr, the kind's exit code (invalid 2, conflict 4), nothing changed.
    bad = cli(sqlite_url, "edit", "checker", "--max-steps", "0")
    assert bad.returncode == 2 and bad.stdout == ""
    assert said(bad.stderr) == [
        "error: The agent profile is invalid: max_steps: Input should be greater than or equal to 1"
    ]
    db = Database(sqlite_url)
    try:
        workflow = ops.create_workflow(
            db,
            {
                "name": "Refund run",
                "steps": [{"name": "check", "type": "task", "task": "Check", "agent": "checker"}],
            },
            created_by="admin@example.com",
        )
    finally:
        db.dispose()
    refused = cli(sqlite_url, "delete", "checker", "--as", "admin@example.com")
    assert refused.returncode == 4 and len(said(refused.stderr)) == 1
    assert said(refused.stderr)[0].startswith("error: Agent profile 'checker' is used by workflows")
    assert f"Refund run ({workflow.id})" in said(refused.stderr)[0]
    assert json.loads(ok(sqlite_url, "show", "checker", "--json"))["max_steps"] == 4

    missing = cli(sqlite_url, "show", "nobody")
    assert (missing.returncode, said(missing.stderr)) == (  # not found: exit 3
        3,
        ["error: No agent profile is named 'nobody'."],
    )


def test_delete_of_an_unused_profile(pg_url: str) -> None:
    admins(pg_url, "admin@example.com")
    ok(pg_url, "create", "writer", "--model", "gpt-4o-mini", "--provider", "openai")
    assert ok(pg_url, "delete", "writer", "--as", "admin@example.com") == "agent profile writer deleted\n"
    assert json.loads(ok(pg_url, "list", "--json")) == []
