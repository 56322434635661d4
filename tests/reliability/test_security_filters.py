"""SQL metacharacters in every filter, on SQLite and PostgreSQL: the workflow
search (core, REST, CLI), the status and workflow-id query parameters, the
approval lists (core, REST, CLI, Gradio, Slack ``/approvals``) and the inbox
filters the dashboard uses. Each answer must be exact: the workflows whose
name or id contains the text literally (``%``, ``_`` and ``\\`` are not
wildcards), nothing for the rest, or a 422 with a message; never an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.agents import execution_logs
from core.agents.execution_logs import LogFilters
from core.approvals.engine import ApprovalEngine
from core.approvals.inbox import InboxFilter, inbox
from core.base.errors import ApprovalNotFound, NulCharacter
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from gateway.approver_answers import inbox as gradio_inbox
from gateway.slack import handle_command
from tests.acceptance.core.conftest import cli_json
from tests.integration.gateway.conftest import BOSS, token_for, waiting_workflow
from tests.reliability.report import AttackTally, record_attacks

NAMES = ["plain deploy", "100% sure", "snake_case job", "back\\slash", "O'Brien's deploy", 'say "hi"']
NEEDLES = [
    "' OR 1=1 --",
    "' OR '1'='1",
    "'; DROP TABLE workflows; --",
    "' UNION SELECT email, role FROM users --",
    "%",
    "_",
    "\\",
    "%_%",
    "\\%",
    "a%",
    "'",
    '"',
    "*",
    "[a-z]",
    "--",
    "/*",
    "O'Brien",
    "100%",
    "snake_case",
    "back\\slash",
]


def expected_ids(workflows: dict[str, str], needle: str) -> set[str]:
    """What a literal, case-insensitive search for ``needle`` must find."""
    lowered = needle.lower()
    return {i for i, name in workflows.items() if lowered in name.lower() or lowered in i.lower()}


def attempt(tally: AttackTally, what: str, check: Callable[[], bool]) -> None:
    try:
        ok = check()
    except Exception as exc:  # noqa: BLE001 - any exception is a failure, counted and named
        tally.check(False, f"{what}: {type(exc).__name__}: {exc}")
        return
    tally.check(ok, what)


def refused_422(response: Any) -> bool:
    return response.status_code == 422 and bool(response.json().get("message"))


def found_by_rest(response: Any, want: set[str]) -> bool:
    body = response.json()
    found = {i["id"] for i in body.get("items", [])}
    return response.status_code == 200 and found == want and body["total"] == len(want)


def refused_or_empty(call: Any) -> bool:
    """A NUL finds nothing (SQLite) or is refused by name (PostgreSQL cannot compare it)."""
    try:
        return not call()
    except (NulCharacter, ApprovalNotFound):
        return True


def empty_or_refused(response: Any) -> bool:
    """Nothing found (a well-formed id no request has), or refused with a message."""
    return (response.status_code == 200 and response.json() == []) or refused_422(response)


def test_sql_metacharacters_in_every_filter(
    request: pytest.FixtureRequest, db: Database, db_url: str, client: TestClient
) -> None:
    tally = AttackTally("SQL metacharacters in every filter")
    add_user(db, "agent@example.com", role="service")  # who starts workflows has an account
    workflows = {
        ops.create_workflow(
            db, {"name": name, "steps": [{"name": "s", "type": "checkpoint"}]}, created_by="agent@example.com"
        ).id: name
        for name in NAMES
    }
    for _ in range(2):  # something real in the lists, so "nothing" is a real answer
        workflow_id, _approval = waiting_workflow(db)
        workflows[workflow_id] = "Release"
    auth = token_for(db, BOSS)
    assert len(inbox(db, BOSS)) == 2 and len(ApprovalEngine(db).list_pending_approvals(BOSS)) == 2
    engine = ApprovalEngine(db)

    for needle in NEEDLES:
        want = expected_ids(workflows, needle)
        attempt(
            tally,
            f"core search {needle!r}",
            lambda n=needle, w=want: {r.id for r in ops.list_workflows(db, search=n, limit=500).rows} == w,
        )
        attempt(
            tally,
            f"REST search {needle!r}",
            lambda n=needle, w=want: found_by_rest(
                client.get("/api/workflows", params={"search": n, "limit": 500}, headers=auth), w
            ),
        )
        attempt(
            tally,
            f"REST status {needle!r}",
            lambda n=needle: refused_422(client.get("/api/workflows", params={"status": n}, headers=auth)),
        )
        attempt(
            tally,
            f"REST approvals workflow_id {needle!r}",
            lambda n=needle: empty_or_refused(
                client.get("/api/approvals", params={"workflow_id": n}, headers=auth)
            ),
        )
        attempt(
            tally,
            f"core approvals for {needle!r}",
            lambda n=needle: (
                engine.list_pending_approvals(n) == [] and engine.list_pending_approvals(None, n) == []
            ),
        )
        attempt(tally, f"inbox of {needle!r}", lambda n=needle: inbox(db, n) == [])
        for field in ("workflow_id", "approval_type", "channel"):
            attempt(
                tally,
                f"inbox filter {field}={needle!r}",
                lambda n=needle, f=field: inbox(db, BOSS, InboxFilter(**{f: n})) == [],
            )
        attempt(tally, f"Gradio inbox of {needle!r}", lambda n=needle: gradio_inbox(db, n) == [])
        attempt(
            tally,
            f"Slack /approvals as {needle!r}",
            lambda n=needle: "not linked" in handle_command(db, {"user_id": n})["text"],
        )
    # A NUL character (the dashboard's search box passes whatever the browser sends): nothing found.
    attempt(tally, "core search NUL", lambda: ops.list_workflows(db, search="deploy\x00").total == 0)
    attempt(
        tally,
        "REST search NUL",
        lambda: found_by_rest(client.get("/api/workflows", params={"search": "\x00"}, headers=auth), set()),
    )
    attempt(tally, "inbox of a NUL", lambda: inbox(db, "boss\x00@example.com") == [])
    attempt(
        tally,
        "core approvals for a NUL",
        lambda: refused_or_empty(lambda: engine.list_pending_approvals("boss\x00@example.com")),
    )
    attempt(tally, "core approval id NUL", lambda: refused_or_empty(lambda: engine.get("ap\x00")))
    attempt(
        tally,
        "REST approval id NUL",
        lambda: client.get("/api/approvals/ap%00", headers=auth).status_code in (404, 422),
    )
    for field in ("workflow_id", "approval_type", "channel"):
        attempt(
            tally,
            f"inbox filter {field} NUL",
            lambda f=field: inbox(db, BOSS, InboxFilter(**{f: "\x00"})) == [],
        )
    for field in ("workflow_id", "session_id", "agent", "tool_name", "text", "tenant"):
        attempt(
            tally,
            f"execution logs filter {field} NUL",
            lambda f=field: execution_logs.query(db, LogFilters(**{f: "x\x00"}), None).total == 0,
        )
    # The CLI is a process per call: one search that must stay literal, one list that must stay empty.
    want = expected_ids(workflows, "%")
    attempt(
        tally,
        "CLI workflow list --search '%'",
        lambda: (
            {
                row["id"]
                for row in cli_json(db_url, "workflow", "list", "--search", "%", "--limit", "500")[
                    "workflows"
                ]
            }
            == want
        ),
    )
    attempt(
        tally,
        'CLI approvals list --for "\' OR 1=1 --"',
        lambda: cli_json(db_url, "approvals", "list", "--for", "' OR 1=1 --") == [],
    )
    record_attacks(request, tally)
    assert tally.refused == tally.attempts, tally.failures
