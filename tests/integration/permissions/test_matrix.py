"""The permission matrix: role × action × interface, each cell allowed or refused
as EXPECTED (world.py) says, with the refusal's message; printed as tables at
the end of the run (tests/reliability/report.py).

- **core**: every action with a use case, every role, on SQLite; a refusal is
  ``NotAuthorized`` naming the action and is written to the audit trail.
- **REST**: every action the API offers, every role with a token, on SQLite
  and PostgreSQL: 403 ``{"error": "NotAuthorized", "message", "action"}``.
- **CLI**: one action per group (start, cancel, rollback, answer, tokens,
  alerts), each a ``python -m core ... --as`` subprocess (~3 s each, so a
  subset); refused with one ``error: ...`` line.
- **dashboard**: the controls the pages draw for each role (Streamlit
  AppTest): shown exactly where the action is allowed.
- **Slack, email link, Gradio**: answering an approval through each channel,
  every role (test_matrix_channels.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.base.errors import CountersignError, NotAuthorized
from core.identity.api_tokens import create_token
from core.identity.permissions import REFUSED_EVENT, Action, allowed
from core.store.db import Database
from core.store.tables import WorkflowEvent
from gateway.app import create_app
from tests.acceptance.core.conftest import ROOT, cli_env
from tests.integration.permissions.world import (
    ACCOUNT_ROLE,
    EMAILS,
    EXPECTED,
    GATE,
    NA,
    ROLE_DESCRIPTIONS,
    ROLES,
    N,
    World,
    Y,
    add_accounts,
    core_performer,
    refusal,
    table_rows,
)
from tests.reliability.report import render, show

pytestmark = pytest.mark.timeout(900)


def refusals_of(db: Database, actor: str, action: Action) -> int:
    with db.read() as session:
        return sum(
            1
            for e in session.scalars(
                select(WorkflowEvent).where(
                    WorkflowEvent.event_type == REFUSED_EVENT, WorkflowEvent.actor == actor
                )
            )
            if e.data.get("action") == str(action)
        )


def matrix_table(title: str, results: dict[tuple[Action, str], str], roles: tuple[str, ...] = ROLES) -> str:
    return render(title, ["action", *(ROLE_DESCRIPTIONS[r] for r in roles)], table_rows(results, roles))


# -- core ------------------------------------------------------------------------------


def test_core_matrix(sqlite_db: Database, request: pytest.FixtureRequest) -> None:
    db = sqlite_db
    add_accounts(db)
    world = World(db)
    results: dict[tuple[Action, str], str] = {}
    problems: list[str] = []
    for action in Action:
        perform = core_performer(action)
        for role in ROLES:
            expected = EXPECTED[action][role]
            if perform is None or expected == NA:
                continue
            email = EMAILS[role]
            before = refusals_of(db, email, action)
            try:
                perform(world, role, email)
                got, message = Y, ""
            except NotAuthorized as exc:
                got, message = N, str(exc)
            except CountersignError as exc:  # allowed, then refused for another reason
                got, message = (Y, "") if action is Action.DATA_IMPORT else ("error", str(exc))
            results[action, role] = got
            if got != expected:
                problems.append(f"{action} as {role}: {got} {message!r}, expected {expected}")
            elif got == N:
                if not message.startswith(refusal(role, action)):
                    problems.append(f"{action} as {role}: message {message!r}")
                # Every refusal is in the audit trail.
                if refusals_of(db, email, action) != before + 1:
                    problems.append(f"{action} as {role}: no {REFUSED_EVENT} event")
            # The interfaces' show/hide question gives the same answer.
            if (
                action is not Action.APPROVALS_ANSWER
                and role != "starter"
                and allowed(db, email, action) != (expected == Y)
            ):
                problems.append(f"{action} as {role}: allowed() disagrees")
    show(request, matrix_table("Permissions, core (SQLite): role x action", results))
    assert not problems, "\n".join(problems)


# -- REST --------------------------------------------------------------------------------

REST_ACTIONS = (
    Action.WORKFLOWS_START,
    Action.WORKFLOWS_PAUSE,
    Action.WORKFLOWS_RESUME,
    Action.WORKFLOWS_CANCEL,
    Action.WORKFLOWS_RETRY,
    Action.WORKFLOWS_ROLLBACK,
    Action.WORKFLOWS_CHECKPOINT,
    Action.APPROVALS_ANSWER,
)
REST_ROLES = ("admin", "approver", "viewer", "service", "starter")


def rest_call(client: TestClient, world: World, action: Action, role: str, headers: dict[str, str]) -> Any:
    if action is Action.WORKFLOWS_START:
        return client.post("/api/workflows", headers=headers, json={"definition": GATE})
    if action is Action.APPROVALS_ANSWER:
        return client.post(
            f"/api/approvals/{world.approval()}/respond", headers=headers, json={"decision": "approve"}
        )
    if action is Action.WORKFLOWS_RESUME:
        return client.post(f"/api/workflows/{world.paused(role)}/resume", headers=headers)
    if action is Action.WORKFLOWS_RETRY:
        return client.post(f"/api/workflows/{world.failed(role)}/retry", headers=headers)
    workflow_id = world.waiting(role)
    if action is Action.WORKFLOWS_ROLLBACK:
        return client.post(
            f"/api/workflows/{workflow_id}/rollback",
            headers=headers,
            json={"checkpoint": "prepare", "reason": "matrix"},
        )
    if action is Action.WORKFLOWS_CHECKPOINT:
        return client.post(
            f"/api/workflows/{workflow_id}/checkpoints", headers=headers, json={"name": "matrix"}
        )
    verb = {Action.WORKFLOWS_PAUSE: "pause", Action.WORKFLOWS_CANCEL: "cancel"}[action]
    return client.post(f"/api/workflows/{workflow_id}/{verb}", headers=headers, json={})


def test_rest_matrix(db: Database, db_url: str, request: pytest.FixtureRequest) -> None:
    add_accounts(db)
    world = World(db)
    tokens = {
        role: {"Authorization": f"Bearer {create_token(db, EMAILS[role], 'matrix')[1]}"}
        for role in REST_ROLES
    }
    # A person without an account gets no token at all.
    with pytest.raises(CountersignError, match="No user 'nobody@perm.test'"):
        create_token(db, EMAILS["unknown"], "matrix")
    results: dict[tuple[Action, str], str] = {}
    problems: list[str] = []
    with TestClient(create_app(db, approver_ui=False), raise_server_exceptions=False) as client:
        for action in REST_ACTIONS:
            for role in REST_ROLES:
                expected = EXPECTED[action][role]
                response = rest_call(client, world, action, role, tokens[role])
                got = (
                    Y
                    if response.status_code < 300
                    else N
                    if response.status_code == 403
                    else f"HTTP {response.status_code}"
                )
                results[action, role] = got
                if got != expected:
                    problems.append(f"{action} as {role}: {got} {response.text}, expected {expected}")
                elif got == N:
                    body = response.json()
                    if body["error"] != "NotAuthorized" or not body["message"].startswith(
                        refusal(role, action)
                    ):
                        problems.append(f"{action} as {role}: {body}")
                    if body.get("action") != str(action):
                        problems.append(f"{action} as {role}: action {body.get('action')!r}")
    dialect = "PostgreSQL" if "postgresql" in db_url else "SQLite"
    show(request, matrix_table(f"Permissions, REST ({dialect}): role x action", results, REST_ROLES))
    assert not problems, "\n".join(problems)


# -- CLI ---------------------------------------------------------------------------------

# One action per group: start, steer (cancel; its starter too), undo, answer, admin, operate.
CLI_ACTIONS = (
    Action.WORKFLOWS_START,
    Action.WORKFLOWS_CANCEL,
    Action.WORKFLOWS_ROLLBACK,
    Action.APPROVALS_ANSWER,
    Action.USERS_MANAGE,
    Action.ALERTS_ACKNOWLEDGE,
)
CLI_ROLES = ("admin", "approver", "viewer", "service", "unknown")
CLI_EXTRA = (
    (Action.WORKFLOWS_CANCEL, "starter"),
    (Action.WORKFLOWS_CANCEL, "system"),
    (Action.WORKFLOWS_ROLLBACK, "system"),
    (Action.APPROVALS_ANSWER, "disabled"),
)


def cli_args(world: World, action: Action, role: str, definition: Path) -> list[str]:
    if action is Action.WORKFLOWS_START:
        args = ["workflow", "start", str(definition)]
    elif action is Action.WORKFLOWS_CANCEL:
        args = ["workflow", "cancel", world.waiting(role)]
    elif action is Action.WORKFLOWS_ROLLBACK:
        args = ["workflow", "rollback", world.waiting(role), "--checkpoint", "prepare", "--reason", "matrix"]
    elif action is Action.APPROVALS_ANSWER:
        args = ["approvals", "respond", world.approval(), "--decision", "approve"]
    elif action is Action.USERS_MANAGE:
        args = ["tokens", "create", "--user", EMAILS["service"], "--name", "matrix"]
    else:
        args = ["alerts", "ack", str(world.alert())]
    # "system" is the CLI's own kind of actor (cli:...), named with --as like the others.
    return [*args, "--as", EMAILS[role]]


def run_cli(db_url: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=cli_env(db_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_matrix(
    sqlite_db: Database, sqlite_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = sqlite_db
    add_accounts(db)
    world = World(db)
    definition = tmp_path / "gate.json"
    definition.write_text(json.dumps(GATE), encoding="utf-8")
    cells = [(a, r) for a in CLI_ACTIONS for r in CLI_ROLES] + list(CLI_EXTRA)
    commands = {cell: cli_args(world, *cell, definition) for cell in cells}  # state made first
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip(cells, pool.map(lambda c: run_cli(sqlite_url, commands[c]), cells), strict=True))
    results: dict[tuple[Action, str], str] = {}
    problems: list[str] = []
    for (action, role), outcome in done.items():
        expected = EXPECTED[action][role]
        got = Y if outcome.returncode == 0 else N
        results[action, role] = got
        if got != expected:
            problems.append(f"{action} as {role}: {got} {outcome.stderr!r}, expected {expected}")
        elif got == N:
            lines = outcome.stderr.splitlines()
            if len(lines) != 1 or not lines[0].startswith(f"error: {refusal(role, action)}"):
                problems.append(f"{action} as {role}: stderr {outcome.stderr!r}")
    show(request, matrix_table("Permissions, CLI subprocesses (SQLite; one action per group)", results))
    assert not problems, "\n".join(problems)


# -- dashboard -------------------------------------------------------------------------------

UI_ROLES = ("admin", "approver", "viewer", "service", "starter")


@pytest.fixture
def dashboard_db(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[Database]:
    from tests.integration.dashboard.conftest import _app_over

    with _app_over(monkeypatch, sqlite_url):
        db = Database(sqlite_url)
        yield db
        db.dispose()


def test_dashboard_matrix(dashboard_db: Database, request: pytest.FixtureRequest) -> None:
    """Each control drawn exactly for the roles allowed its action (pages in the
    navigation only; a page a role cannot open shows it nothing)."""
    from tests.integration.dashboard.conftest import new_app, no_exception, open_page, sign_in

    db = dashboard_db
    add_accounts(db)
    world = World(db)
    results: dict[tuple[Action, str], str] = {}
    problems: list[str] = []
    for role in UI_ROLES:
        email = EMAILS[role]
        alert = world.alert()
        notification, approval = world.dead_delivery()
        waiting, paused, failed = world.waiting(role), world.paused(role), world.failed(role)
        # (action, page, query, what shows the control)
        probes: list[tuple[Action, str, dict[str, str], str]] = [
            (Action.WORKFLOWS_PAUSE, "workflow", {"workflow": waiting}, "button:workflow.pause"),
            (Action.WORKFLOWS_CANCEL, "workflow", {"workflow": waiting}, "button:workflow.cancel"),
            (Action.WORKFLOWS_ROLLBACK, "workflow", {"workflow": waiting}, "button:checkpoints.rollback"),
            (Action.WORKFLOWS_RESUME, "workflow", {"workflow": paused}, "button:workflow.resume"),
            (Action.WORKFLOWS_RETRY, "workflow", {"workflow": failed}, "button:workflow.retry"),
            (Action.WORKFLOWS_START, "workflows", {}, "header:Start a workflow"),
            (Action.APPROVALS_ANSWER, "approval", {"approval": approval}, "button:approval.approve"),
            (
                Action.DELIVERIES_RETRY,
                "approval",
                {"approval": approval},
                f"button:deliveries.retry.{notification}",
            ),
            (Action.ALERTS_ACKNOWLEDGE, "monitor", {}, f"button:alerts.ack.{alert}"),
            (Action.CHANNELS_CONFIGURE, "settings", {}, "button:channel.webhook.save"),
            (Action.USERS_MANAGE, "settings", {}, "button:tokens.new.submit"),
            (Action.AGENTS_MANAGE, "agents", {}, "button:agents.new.save"),
            (Action.TENANTS_MANAGE, "tenants", {}, "button:tenants.create.submit"),
            (Action.AUDIT_READ, "logs", {}, "download_button:logs.download"),
            (Action.POLICIES_MANAGE, "policies", {}, "button:policies.create.submit"),
        ]
        at = sign_in(new_app(), email, "matrix-pass")
        no_exception(at)
        current: tuple[str, tuple[tuple[str, str], ...]] | None = None
        for action, page, query, probe in probes:
            key = (page, tuple(sorted(query.items())))
            if key != current:
                try:
                    open_page(at, page, **query)
                    reachable = not at.exception
                except Exception:  # noqa: BLE001  (a page this role's navigation does not have)
                    reachable = False
                current = key
            kind, _, name = probe.partition(":")
            if not reachable:
                present = False
            elif kind == "button":
                present = any(b.key == name for b in at.button)
            elif kind == "download_button":
                present = any(
                    b.proto.id.endswith(name) or getattr(b, "key", None) == name
                    for b in at.get("download_button")
                )
            else:
                present = name in [h.value for h in at.header]
            got = Y if present else N
            expected = EXPECTED[action][role]
            results[action, role] = got
            if got != expected:
                problems.append(
                    f"{action} as {role} on {page}: control {'shown' if present else 'hidden'}"
                    f", expected {expected}"
                )
    show(
        request,
        matrix_table(
            "Permissions, dashboard controls (AppTest, SQLite): shown or hidden",
            {k: ("shown" if v == Y else "hidden") for k, v in results.items()},
            UI_ROLES,
        ),
    )
    assert not problems, "\n".join(problems)


def test_expectations_name_every_action() -> None:
    assert set(EXPECTED) == set(Action)
    assert all(set(cells) == set(ROLES) for cells in EXPECTED.values())
    assert set(ACCOUNT_ROLE.values()) == {"admin", "approver", "viewer", "service"}


def test_the_readme_table_is_the_rule() -> None:
    """README's role table is core.identity.permissions' own (role_table), row for row."""
    from core.identity.permissions import ROLES as ACCOUNT_ROLES
    from core.identity.permissions import role_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = ["| action | " + " | ".join(ACCOUNT_ROLES) + " |"] + [
        f"| `{row[0]}` | " + " | ".join(row[1:]) + " |" for row in role_table()
    ]
    for row in rows:
        assert row in readme, row
