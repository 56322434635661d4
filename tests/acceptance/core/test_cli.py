"""The command line, as users run it, against SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.core.conftest import ROOT, accounts, cli, cli_json

# Each command is a fresh interpreter (~3 s of imports); on a busy machine that adds up.
pytestmark = pytest.mark.timeout(900)

DEPLOY = str(ROOT / "core" / "demo" / "templates" / "deployment_pipeline.yaml")
DEVOPS = "devops@example.com"


def test_start_run_answer_and_show(db_url: str) -> None:
    assert cli(db_url, "db", "upgrade").stdout.startswith("database at revision ")
    accounts(db_url, "service", "release-bot@example.com")  # it starts workflows
    workflow_id = cli(
        db_url,
        "workflow",
        "start",
        DEPLOY,
        "--input",
        '{"service": "checkout-api", "version": "2.14.0"}',
        "--as",
        "release-bot@example.com",
    ).stdout.strip()
    assert len(workflow_id) == 36
    assert "idle after 1 steps" in cli(db_url, "runner", "--until-idle").stdout

    [request] = cli_json(db_url, "approvals", "list", "--for", DEVOPS)
    assert (request["workflow_id"], request["title"]) == (workflow_id, "Production deploy approval")

    # Refusals: one plain line on stderr, non-zero exit, nothing written.
    refused = cli(
        db_url,
        "approvals",
        "respond",
        request["id"],
        "--decision",
        "approve",
        "--as",
        "intruder@example.com",
        ok=False,
    )
    assert "intruder@example.com is not an approver" in refused.stderr
    refused = cli(
        db_url,
        "approvals",
        "respond",
        request["id"],
        "--decision",
        "approve",
        "--as",
        DEVOPS,
        "--data",
        '{"change_ticket": "nope", "window": "now"}',
        ok=False,
    )
    # The field's description and example, not its regular expression.
    assert (
        "change_ticket: 'nope' is not in the expected form: The change ticket: CHG- then its "
        "number, for example 'CHG-2041'" in refused.stderr
    )

    answered = cli(
        db_url,
        "approvals",
        "respond",
        request["id"],
        "--decision",
        "approve",
        "--as",
        DEVOPS,
        "--data",
        '{"change_ticket": "CHG-7", "window": "now"}',
        "--comment",
        "window agreed",
    )
    assert answered.stdout.strip() == f"{request['id']} approved"
    second = cli(
        db_url, "approvals", "respond", request["id"], "--decision", "reject", "--as", DEVOPS, ok=False
    )
    assert f"already approved by {DEVOPS}" in second.stderr
    assert "idle after 3 steps" in cli(db_url, "runner", "--until-idle").stdout

    shown = cli_json(db_url, "workflow", "show", workflow_id)
    assert shown["status"] == "completed"
    trail = shown["events"]
    assert (trail[0]["type"], trail[0]["actor"]) == ("workflow.created", "release-bot@example.com")
    responded = [e for e in trail if e["type"] == "approval.responded"]
    assert [(e["actor"], e["data"]["channel"], e["data"]["comment"]) for e in responded] == [
        (DEVOPS, "cli", "window agreed")
    ]  # the refused answers left nothing behind


def completed_deployment(db_url: str) -> str:
    """A finished deployment workflow, set up through the Python API."""
    from core.approvals.engine import ApprovalEngine
    from core.definitions.definition_text import load_definition_file
    from core.engine import workflows as ops
    from core.identity.users import add_user
    from core.runtime import build_runner
    from core.store.db import Database

    db = Database(db_url)
    try:
        add_user(db, "bot@x.io", role="service")
        workflow_id = ops.create_workflow(
            db,
            load_definition_file(DEPLOY),
            created_by="bot@x.io",
            input_data={"service": "api", "version": "1"},
        ).id
        build_runner(db, lease_seconds=10).run_until_idle(max_seconds=60)
        [request] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
        ApprovalEngine(db).respond_to_approval(
            request.id, DEVOPS, "approve", {"change_ticket": "CHG-1", "window": "now"}
        )
        build_runner(db, lease_seconds=10).run_until_idle(max_seconds=60)
        assert ops.get_workflow(db, workflow_id).status == "completed"
        return workflow_id
    finally:
        db.dispose()


def test_rollback_and_steering(db_url: str) -> None:
    workflow_id = completed_deployment(db_url)
    accounts(db_url, "admin", "sre@example.com")  # rolling back and cancelling are an admin's
    rolled = cli_json(
        db_url,
        "workflow",
        "rollback",
        workflow_id,
        "--checkpoint",
        "before:deployment_approval",
        "--reason",
        "errors after deploy",
        "--as",
        "sre@example.com",
    )
    assert [(c["step"], c["tool"]) for c in rolled["compensations"]] == [
        ("smoke_tests", None),
        ("deploy", "rollback_release"),
        ("deployment_approval", None),
    ]
    checkpoints = cli_json(db_url, "checkpoints", "list", workflow_id)
    assert [(c["name"], c["superseded"]) for c in checkpoints] == [
        ("after:pre_deployment_checks", False),
        ("before:deployment_approval", False),
        ("after:deploy", True),
    ]

    assert (
        cli(db_url, "workflow", "resume", workflow_id, "--as", "sre@example.com").stdout.strip()
        == f"{workflow_id} running"
    )
    assert (
        cli(db_url, "workflow", "pause", workflow_id, "--as", "sre@example.com").stdout.strip()
        == f"{workflow_id} paused"
    )
    assert (
        cli(
            db_url, "workflow", "cancel", workflow_id, "--reason", "postponed", "--as", "sre@example.com"
        ).stdout.strip()
        == f"{workflow_id} cancelled"
    )
    listed = cli_json(db_url, "workflow", "list")
    assert listed["total"] == 1
    assert [(w["id"], w["status"]) for w in listed["workflows"]] == [(workflow_id, "cancelled")]
    trail = cli_json(db_url, "workflow", "show", workflow_id)["events"]
    assert any(e["type"] == "step.compensated" and e["step"] == "deploy" for e in trail)
    moves = [(e["actor"], e["after"]["status"]) for e in trail if e["type"] == "workflow.status_changed"]
    assert moves[-4:] == [
        ("sre@example.com", "paused"),
        ("sre@example.com", "running"),
        ("sre@example.com", "paused"),
        ("sre@example.com", "cancelled"),
    ]
    [rolled_event] = [e for e in trail if e["type"] == "workflow.rolled_back"]
    assert (rolled_event["actor"], rolled_event["data"]["reason"]) == (
        "sre@example.com",
        "errors after deploy",
    )


def test_refusals_are_one_line(sqlite_url: str, tmp_path: Path) -> None:
    # How refusals are printed does not depend on the database: SQLite only, to stay quick.
    db_url = sqlite_url
    missing = cli(db_url, "workflow", "show", "no-such-id", ok=False)
    assert missing.stderr == "error: No workflow has the id 'no-such-id'.\n"
    # Bad input exits 2 (the README's codes), not 4 (a conflict).
    unknown = cli(db_url, "workflow", "list", "--status", "bogus", ok=False)
    assert unknown.returncode == 2, unknown.stderr
    assert unknown.stderr.startswith("error: Unknown status 'bogus'; one of ")
    bad_input = cli(db_url, "workflow", "start", DEPLOY, "--input", "{not json", "--as", "x@y.z", ok=False)
    assert "--input is not valid JSON" in bad_input.stderr
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(
        "steps:\n  - name: a\n    type: approval\n    approval_config: {type: vote}\n"
        "  - name: a\n    colour: red\n"
    )
    refused = cli(db_url, "workflow", "start", str(invalid), "--as", "x@y.z", ok=False)
    for problem in (
        "steps[0].approval_config.type: must be one of binary, form, budget",
        "steps[1].colour: unknown field",
        "steps[1].name: duplicate step name 'a'",
    ):
        assert problem in refused.stderr
    usage = cli(db_url, "workflow", "rollback", "some-id", "--reason", "r", ok=False)
    assert "Missing option '--as'" in usage.stderr
    bad_data = cli(
        db_url,
        "approvals",
        "respond",
        "some-id",
        "--decision",
        "approve",
        "--as",
        "x@y.z",
        "--data",
        "{oops",
        ok=False,
    )
    assert "--data is not valid JSON" in bad_data.stderr
    # 10,000 levels of brackets: one line naming the option and the limit, exit 2, nothing written.
    deep = "[" * 10_000 + "]" * 10_000
    for option, command in (
        ("--input", ["workflow", "start", DEPLOY, "--as", "x@y.z"]),
        ("--data", ["approvals", "respond", "some-id", "--decision", "approve", "--as", "x@y.z"]),
    ):
        too_deep = cli(db_url, *command, option, '{"a": ' + deep + "}", ok=False)
        assert too_deep.returncode == 2, too_deep.stderr
        assert (
            too_deep.stderr
            == f"error: {option}: nested deeper than 64 levels (mappings and lists inside each other).\n"
        )
    assert cli_json(db_url, "workflow", "list") == {"total": 0, "workflows": []}
    # SQLite would store a name longer than its column whole: refused in words, as on PostgreSQL.
    accounts(db_url, "admin", "root@example.com")
    long_name = cli(
        db_url,
        "tokens",
        "create",
        "--for",
        "root@example.com",
        "--name",
        "n" * 201,
        "--as",
        "root@example.com",
        ok=False,
    )
    assert long_name.stderr == "error: Too long to store: name: 201 characters, at most 200\n"
    assert cli_json(db_url, "tokens", "list") == []


def test_demo_loads_the_four_scenarios(db_url: str) -> None:
    loaded = cli(db_url, "demo")
    names = [line.split(" ", 1)[1] for line in loaded.stdout.splitlines()]
    assert names == [
        "Order processing",
        "Multi-level budget approval",
        "Production deployment",
        "Document review",
    ]
    assert "countersign-demo" in loaded.stderr
    cli(db_url, "runner", "--until-idle")
    pending = cli_json(db_url, "approvals", "list")
    assert sorted(a["title"] for a in pending) == [
        "High-value payment",
        "Marketing campaign budget",
        "Production deploy approval",
        "Review the pricing page update",
    ]
