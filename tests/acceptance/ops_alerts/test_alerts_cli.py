"""``python -m core alerts list|ack|evaluate`` as real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.core.conftest import accounts, cli, cli_json

FAILING = {
    "name": "Release api",
    "steps": [{"name": "deploy", "type": "tool", "tool": "deploy_release", "args": {"service": "api"}}],
}


def test_alerts_are_evaluated_listed_acknowledged_and_resolved_from_the_command_line(
    db_url: str,
    tmp_path: Path,
) -> None:
    definition = tmp_path / "failing.json"
    definition.write_text(json.dumps(FAILING))
    accounts(db_url, "approver", "ops@example.com", "oncall@example.com", "other@example.com")
    workflow_id = cli(db_url, "workflow", "start", str(definition), "--as", "ops@example.com").stdout.strip()
    cli(db_url, "runner", "--until-idle")

    raised = cli_json(db_url, "alerts", "evaluate")["raised"]
    assert [(a["rule"], a["subject"], a["severity"]) for a in raised] == [
        ("workflow_failed", workflow_id, "critical")
    ]
    assert cli(db_url, "alerts", "evaluate").stdout.strip().endswith("0 raised, 0 resolved")
    [listed] = cli_json(db_url, "alerts", "list")
    alert_id = listed["id"]
    assert listed["acknowledged_by"] is None and "Release api" in listed["message"]
    table = cli(db_url, "alerts", "list").stdout
    assert "workflow_failed" in table and table.strip().endswith("1 open")

    done = cli(db_url, "alerts", "ack", str(alert_id), "--as", "oncall@example.com")
    assert done.stdout.strip() == f"alert {alert_id} acknowledged by oncall@example.com"
    refused = cli(db_url, "alerts", "ack", str(alert_id), "--as", "other@example.com", ok=False)
    assert "already acknowledged by oncall@example.com" in refused.stderr
    assert "No alert has the id 999" in cli(db_url, "alerts", "ack", "999", ok=False).stderr

    cli(db_url, "workflow", "retry", workflow_id, "--as", "ops@example.com")
    assert cli_json(db_url, "alerts", "evaluate")["resolved"] == [alert_id]
    assert cli_json(db_url, "alerts", "list") == []
    [resolved] = cli_json(db_url, "alerts", "list", "--resolved")
    assert resolved["resolved_at"] and resolved["acknowledged_by"] == "oncall@example.com"
