"""``python -m core agents teams ...`` as a person runs it: a subprocess per
command, a real runner process, and every refusal as one line on stderr."""

from __future__ import annotations

import pytest

from tests.acceptance.core.conftest import accounts, cli, cli_json

pytestmark = pytest.mark.timeout(600)
ADMIN = "admin@example.com"
EDITOR = "editor@example.com"


def teams(db_url: str, *args: str, ok: bool = True) -> str:
    done = cli(db_url, "agents", "teams", *args, ok=ok)
    return done.stdout if ok else done.stderr.strip()


def test_every_teams_command_and_its_refusals(sqlite_url: str) -> None:
    accounts(sqlite_url, "admin", ADMIN, "ops@example.com")  # teams are a platform admin's
    for name in ("researcher", "writer", "editor"):
        cli(sqlite_url, "agents", "create", name, "--provider", "rehearsal", "--as", ADMIN)

    assert (
        teams(
            sqlite_url,
            "create",
            "desk",
            "--member",
            "researcher",
            "--member",
            "writer",
            "--description",
            "News desk",
            "--as",
            ADMIN,
        )
        == "agent team desk created\n"
    )
    assert (
        teams(
            sqlite_url,
            "edit",
            "desk",
            "--member",
            "researcher",
            "--member",
            "writer",
            "--member",
            "editor",
            "--approve-before",
            "editor",
            "--approver",
            EDITOR,
            "--as",
            "ops@example.com",
        )
        == "agent team desk updated\n"
    )
    listing = teams(sqlite_url, "list").splitlines()
    assert listing[0].split() == ["NAME", "MEMBERS", "DESCRIPTION"]
    assert "researcher -> writer -> [approval] editor" in listing[1]
    [listed] = cli_json(sqlite_url, "agents", "teams", "list")
    assert (listed["name"], listed["members"], listed["created_by"], listed["settings"]) == (
        "desk",
        ["researcher", "writer", "editor"],
        ADMIN,
        {"approve_before": ["editor"], "approval": {"requested_from": [EDITOR]}},
    )
    shown = cli_json(sqlite_url, "agents", "teams", "show", "desk")
    assert shown["steps"] == ["researcher", "writer", "approve_editor", "editor"]
    assert "pipeline: researcher -> writer -> [approval] editor" in teams(sqlite_url, "show", "desk")

    # Refusals: exit 1, one "error:" line, nothing changed.
    assert teams(sqlite_url, "create", "bureau", "--member", "writer", "--member", "ghost", ok=False) == (
        "error: The agent team is invalid: members: no agent profile is named 'ghost'"
    )
    assert teams(sqlite_url, "create", "bureau", ok=False) == (
        "error: The agent team is invalid: members: name at least one agent profile"
    )
    assert teams(sqlite_url, "create", "desk", "--member", "writer", ok=False) == (
        "error: An agent team named 'desk' already exists."
    )
    assert teams(sqlite_url, "edit", "desk", "--approve-before", "critic", ok=False) == (
        "error: The agent team is invalid: settings.approve_before[0]: 'critic' is not a member"
    )
    assert teams(sqlite_url, "edit", "desk", "--settings", "{oops", ok=False).startswith(
        "error: --settings is not valid JSON"
    )
    assert teams(sqlite_url, "show", "nobody", ok=False) == "error: No agent team is named 'nobody'."
    assert teams(sqlite_url, "delete", "nobody", ok=False) == ("error: No agent team is named 'nobody'.")
    assert teams(sqlite_url, "start", "desk", "--task", " ", ok=False) == (
        "error: Give the team a task: the text its first member works on."
    )
    assert teams(sqlite_url, "start", "nobody", "--task", "tides", ok=False) == (
        "error: No agent team is named 'nobody'."
    )
    refused = cli(sqlite_url, "agents", "delete", "writer", "--as", ADMIN, ok=False).stderr.strip()
    assert refused == (
        "error: Agent profile 'writer' is a member of agent teams: desk. Remove it from them first."
    )
    assert [t["name"] for t in cli_json(sqlite_url, "agents", "teams", "list")] == ["desk"]
    assert cli_json(sqlite_url, "agents", "teams", "show", "desk")["members"] == [
        "researcher",
        "writer",
        "editor",
    ]

    # Start, run, approve the gate, run again: an ordinary workflow.
    started = teams(sqlite_url, "start", "desk", "--task", "explain tides", "--as", ADMIN)
    assert started.startswith("agent team desk started: workflow ")
    workflow_id = started.split()[-1]
    cli(sqlite_url, "runner", "--until-idle")
    workflow = cli_json(sqlite_url, "workflow", "show", workflow_id)
    assert (workflow["name"], workflow["status"]) == ("team:desk", "waiting_approval")
    [gate] = cli_json(sqlite_url, "approvals", "list", "--workflow", workflow_id)
    cli(sqlite_url, "approvals", "respond", gate["id"], "--decision", "approve", "--as", EDITOR)
    cli(sqlite_url, "runner", "--until-idle")
    workflow = cli_json(sqlite_url, "workflow", "show", workflow_id)
    assert workflow["status"] == "completed"
    assert workflow["step_outputs"]["editor"]["result"] == ("Rehearsed: Rehearsed: Rehearsed: explain tides")

    assert teams(sqlite_url, "delete", "desk", "--as", ADMIN) == "agent team desk deleted\n"
    assert cli_json(sqlite_url, "agents", "teams", "list") == []
    cli(sqlite_url, "agents", "delete", "writer", "--as", ADMIN)


def test_a_team_on_postgresql(pg_url: str) -> None:
    cli(pg_url, "agents", "create", "solo", "--provider", "rehearsal")
    teams(
        pg_url,
        "create",
        "one",
        "--member",
        "solo",
        "--settings",
        '{"approve_before": [], "approval": {"timeout": "1h"}}',
    )
    workflow_id = teams(pg_url, "start", "one", "--task", "hello").split()[-1]
    cli(pg_url, "runner", "--until-idle")
    workflow = cli_json(pg_url, "workflow", "show", workflow_id)
    assert (workflow["status"], workflow["step_outputs"]["solo"]["result"]) == (
        "completed",
        "Rehearsed: hello",
    )
