"""``python -m core sessions ...`` as subprocesses, on SQLite and PostgreSQL:
every command, the visibility of each person, and refusals as one line on
stderr with exit code 1."""

from __future__ import annotations

import pytest

from core.conversations import sessions as conv
from core.store.db import Database
from tests.acceptance.core.conftest import cli, cli_json
from tests.integration.conversations.conftest import (
    ACME_ADMIN,
    ACME_USER,
    GLOBEX_ADMIN,
    GLOBEX_USER,
    PLATFORM_ADMIN,
    ScriptedModel,
)

pytestmark = pytest.mark.timeout(900)
SECRET = "Scones only today (kitchen note 5521)."


def test_every_sessions_command_through_the_cli(people: Database, db_url: str) -> None:
    db = people
    model = ScriptedModel()
    acme = conv.start_session(db, ACME_USER, "orders")
    conv.post_user_message(db, acme.id, ACME_USER, "Two muffins please.", model=model)
    globex = conv.start_session(db, GLOBEX_USER, "assistant")

    # list: each person sees what the dashboard shows them.
    assert [s["id"] for s in cli_json(db_url, "sessions", "list", "--as", ACME_ADMIN)] == [acme.id]
    assert {s["id"] for s in cli_json(db_url, "sessions", "list", "--as", PLATFORM_ADMIN)} == {
        acme.id,
        globex.id,
    }
    assert [s["id"] for s in cli_json(db_url, "sessions", "list", "--as", GLOBEX_USER)] == [globex.id]
    assert cli_json(db_url, "sessions", "list", "--as", ACME_ADMIN, "--status", "closed") == []
    table = cli(db_url, "sessions", "list", "--as", ACME_ADMIN, "--status", "active").stdout
    assert table.splitlines()[0].split() == [
        "ID",
        "STATUS",
        "TENANT",
        "FLOW",
        "USER",
        "SUPERVISOR",
        "UPDATED",
    ]
    assert acme.id in table and globex.id not in table
    assert (
        "Unknown status 'paused'"
        in cli(db_url, "sessions", "list", "--as", ACME_ADMIN, "--status", "paused", ok=False).stderr
    )

    # show, and another tenant's supervisor is told the session does not exist.
    shown = cli_json(db_url, "sessions", "show", acme.id, "--as", ACME_ADMIN)
    assert (shown["status"], shown["tenant"], shown["flow"], shown["user"]) == (
        "active",
        "acme",
        "orders",
        ACME_USER,
    )
    assert [(m["role"], m["content"]) for m in shown["messages"]] == [
        ("user", "Two muffins please."),
        ("assistant", "reply 1"),
    ]
    hidden = cli(db_url, "sessions", "show", acme.id, "--as", GLOBEX_ADMIN, ok=False).stderr
    assert hidden.strip() == f"error: No conversation session has the id {acme.id!r}."

    # Injecting before taking over is refused; a viewer cannot take over.
    assert (
        "Take this conversation over"
        in cli(
            db_url, "sessions", "inject", acme.id, "--as", ACME_ADMIN, "--message", "hello", ok=False
        ).stderr
    )
    assert (
        "Only a supervisor"
        in cli(db_url, "sessions", "take-over", acme.id, "--as", ACME_USER, ok=False).stderr
    )
    assert (
        cli(db_url, "sessions", "take-over", acme.id, "--as", ACME_ADMIN).stdout.strip()
        == f"{acme.id} supervised by {ACME_ADMIN}"
    )
    assert (
        "injected"
        in cli(db_url, "sessions", "inject", acme.id, "--as", ACME_ADMIN, "--message", SECRET).stdout
    )

    full = cli(db_url, "sessions", "show", acme.id, "--as", ACME_USER).stdout
    assert f"supervised, held by {ACME_ADMIN}" in full
    assert f"supervisor ({ACME_ADMIN}) [not shown to the model]: {SECRET}" in full
    model_only = cli_json(db_url, "sessions", "show", acme.id, "--as", ACME_ADMIN, "--model-history")
    assert model_only["history"] == "model"
    assert [m["role"] for m in model_only["messages"]] == ["user", "assistant"]

    assert (
        cli(db_url, "sessions", "release", acme.id, "--as", ACME_ADMIN).stdout.strip()
        == f"{acme.id} released to the agent"
    )
    conv.post_user_message(db, acme.id, ACME_USER, "Scones then.", model=model)
    assert all(SECRET not in text for text in model.texts_given())

    assert cli(db_url, "sessions", "close", acme.id, "--as", ACME_USER).stdout.strip() == f"{acme.id} closed"
    closed = cli(db_url, "sessions", "take-over", acme.id, "--as", ACME_ADMIN, ok=False).stderr
    assert "closed" in closed
    assert [s["status"] for s in cli_json(db_url, "sessions", "list", "--as", ACME_USER)] == ["closed"]
    events = [e.event_type for e in conv.session_events(db, acme.id, PLATFORM_ADMIN)]
    assert events == [
        "session.started",
        "session.taken_over",
        "session.message_injected",
        "session.released",
        "session.closed",
    ]
