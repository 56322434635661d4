"""``python -m core logs`` as users run it, against SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.agents.execution_logs import CSV_COLUMNS, record
from core.store.db import Database
from tests.acceptance.core.conftest import cli, cli_json

pytestmark = pytest.mark.timeout(600)

WF_A = "aaaaaaaa-0000-4000-8000-000000000001"
SESSION = "5e55e55e-0000-4000-8000-000000000003"


def seed(db_url: str) -> None:
    db = Database(db_url)
    db.upgrade()
    with db.session() as session:
        record(
            session,
            "agent_step",
            "Step 1: called lookup",
            workflow_id=WF_A,
            tenant="acme",
            step_name="lookup_order",
            agent="refunds",
            duration_ms=40,
        )
        record(
            session,
            "tool_call",
            "lookup() -> 100% done",
            workflow_id=WF_A,
            tool_name="lookup",
            tenant="acme",
            data={"result": "100% done"},
        )
        record(
            session,
            "model_error",
            "RuntimeError: model server fell over",
            level="error",
            workflow_id="bbbbbbbb-0000-4000-8000-000000000002",
            tenant="globex",
        )
        record(session, "agent_step", 'session turn: hello, "you"', session_id=SESSION)
    db.dispose()


def test_logs_lists_filters_and_exports(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    listed = cli(db_url, "logs").stdout
    assert listed.splitlines()[0].split() == ["TIME", "KIND", "LEVEL", "SOURCE", "STEP", "TOOL", "MESSAGE"]
    assert "4 of 4 (page 1 of 1)" in listed

    errors = cli_json(db_url, "logs", "--kind", "model_error", "--level", "error")
    assert errors["total"] == 1 and errors["rows"][0]["message"] == "RuntimeError: model server fell over"
    assert cli_json(db_url, "logs", "--contains", "%")["total"] == 1
    assert cli_json(db_url, "logs", "--tenant", "acme", "--since", "1h")["total"] == 2
    assert cli_json(db_url, "logs", "--session", SESSION[:8])["rows"][0]["session_id"] == SESSION
    assert cli_json(db_url, "logs", "--contains", "'; DROP TABLE execution_logs; --")["total"] == 0

    out = tmp_path / "logs.csv"
    done = cli(db_url, "logs", "--workflow", "AAAAAAAA", "--csv", str(out))
    assert done.stdout.strip() == f"wrote 2 rows to {out}"
    frame = pd.read_csv(out, keep_default_na=False)
    assert list(frame.columns) == list(CSV_COLUMNS)
    assert list(frame["message"]) == ["Step 1: called lookup", "lookup() -> 100% done"]
    assert json.loads(frame["data"][1]) == {"result": "100% done"}
    assert cli_json(db_url, "logs")["total"] == 4  # nothing was dropped

    refused = cli(db_url, "logs", "--kind", "chatter", ok=False)
    assert "Unknown kind or level 'chatter'" in refused.stderr
    refused = cli(db_url, "logs", "--since", "yesterday", ok=False)
    assert "--since: 'yesterday' is neither a duration (24h) nor an ISO time." in refused.stderr


def test_a_tenants_user_sees_only_their_tenants_rows(db_url: str, tmp_path: Path) -> None:
    """``--as`` a tenant's user: their tenant's rows only, whatever --tenant asks, in the
    listing and the CSV (before: every tenant's, and --tenant picked another's)."""
    from core.identity.users import add_user
    from core.tenants.registry import create_tenant

    seed(db_url)
    db = Database(db_url)
    for slug in ("acme", "globex"):
        create_tenant(db, slug)
    add_user(db, "gadmin@globex.example", role="admin", tenant="globex")
    db.dispose()
    own = cli_json(db_url, "logs", "--as", "gadmin@globex.example")
    assert own["total"] == 1 and own["rows"][0]["message"] == "RuntimeError: model server fell over"
    # --tenant never widens a tenant user's scope (core.agents.execution_logs): still only globex's.
    asked = cli_json(db_url, "logs", "--tenant", "acme", "--as", "gadmin@globex.example")
    assert [row["tenant"] for row in asked["rows"]] == ["globex"]
    out = tmp_path / "logs.csv"
    cli(db_url, "logs", "--csv", str(out), "--as", "gadmin@globex.example")
    assert list(pd.read_csv(out, keep_default_na=False)["tenant"]) == ["globex"]
    assert cli_json(db_url, "logs")["total"] == 4  # the platform (the CLI's own user) sees all
