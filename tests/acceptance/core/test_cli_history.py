"""``workflow show``: step events with their outputs, and the whole state at one event."""

from __future__ import annotations

import pytest

from core.identity.users import add_user
from core.store.db import Database
from tests.acceptance.core.conftest import ROOT, cli, cli_json

pytestmark = pytest.mark.timeout(600)

DEPLOY = str(ROOT / "core" / "demo" / "templates" / "deployment_pipeline.yaml")


def test_show_folds_the_state_at_an_event(db_url: str) -> None:
    cli(db_url, "db", "upgrade")
    db = Database(db_url)
    add_user(db, "release-bot@example.com", role="admin")  # starting needs an account
    db.dispose()
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
    cli(db_url, "runner", "--until-idle")
    shown = cli_json(db_url, "workflow", "show", workflow_id)
    [first] = [e for e in shown["events"] if e["type"] == "step.completed"][:1]
    name = first["step"]
    # The event holds what changed; its output is shown, not the reference stored.
    assert first["after"]["step_outputs"] == {name: shown["step_outputs"][name]}
    state = cli_json(db_url, "workflow", "show", workflow_id, "--at", str(first["id"]))
    assert state["before"]["step_outputs"] == {}
    assert state["after"]["step_outputs"] == {name: shown["step_outputs"][name]}
    assert state["after"]["context"] == shown["context"]
    assert state["after"]["status"] == "running"
    missing = cli(db_url, "workflow", "show", workflow_id, "--at", "0", ok=False)
    assert "has no event 0" in missing.stderr
