"""``python -m core workflow validate``: a definition checked offline, as a newcomer would."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.core.conftest import accounts, cli

DEFINITION = """
name: Pay
steps:
  - name: pay
    type: tool
    tool: charge_everything
    args: {amount: 5}
    requires_approval: true
    approval_config: {requested_from: me@example.com, approval_threshold: 1}
"""


def test_validate_warns_of_unknown_tools_and_refuses_what_no_one_could_approve(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "pay.yaml"
    path.write_text(DEFINITION)
    done = cli(sqlite_url, "workflow", "validate", str(path))
    assert done.stdout.strip() == "valid: 1 steps"
    assert "warning: steps[0].tool: no tool is registered as 'charge_everything'" in done.stderr
    refused = cli(sqlite_url, "workflow", "validate", str(path), "--as", "me@example.com", ok=False)
    assert "the only approver is me@example.com" in refused.stderr
    accounts(sqlite_url, "service", "other@example.com")
    started = cli(sqlite_url, "workflow", "start", str(path), "--as", "other@example.com", ok=False)
    assert "no tool is registered as 'charge_everything'" in started.stderr
