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


THREE_PROBLEMS = """
name: Three
steps:
  - name: pay
    type: tool
    tool: charge_everything
  - name: ask
    type: approval
    approval_config: {type: vote, requested_from: a@example.com}
  - name: pay
    type: task
"""
UNKNOWN_TOOL = "steps[0].tool: no tool is registered as 'charge_everything'"


def test_one_refusal_names_every_problem_unknown_tools_included(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "three.yaml"
    path.write_text(THREE_PROBLEMS)
    for command in ("validate", "start"):
        refused = cli(sqlite_url, "workflow", command, str(path), "--as", "admin@example.com", ok=False)
        assert refused.returncode == 2, refused.stderr
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith("error: The workflow definition is invalid: "), line
        assert "steps[1].approval_config.type: must be one of binary, form, budget" in line
        assert "steps[2].name: duplicate step name 'pay' (also steps[0])" in line
        assert UNKNOWN_TOOL in line
        assert "warning:" not in refused.stderr
