"""Hostile input hurts no one else: no answer, definition or workflow can freeze,
wedge or starve the service (issue: ReDoS, poison workflows, nested input,
huge workflows, YAML bombs).

Each test replays an attack that broke the service before, and checks that
the service kept serving others meanwhile. The "Availability" table printed
at the end of the run lists attempts, refusals, the time each answer took
and how long a probe waited beside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.base.errors import DefinitionError
from core.definitions.approval_schema import schema_problems
from core.definitions.definition_text import load_definition_text
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.ops.alerts import evaluate_alerts
from core.runtime import build_runner
from core.store.db import Database
from gateway.app import create_app
from tests.helpers.engine import Calls, events, wait_until
from tests.integration.gateway.conftest import token_for
from tests.reliability.report import record_availability

FINANCE = "finance@example.com"
# Bounds that say "it did not hang", not measurements: the measured times are
# printed in the Availability table.
ANSWER_BOUND = 5.0
PROBE_BOUND = 30.0


@pytest.fixture(autouse=True)
def accounts(sqlite_db: Database) -> None:
    add_user(sqlite_db, "agent@example.com", role="approver")
    add_user(sqlite_db, FINANCE, role="approver")


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_db, approver_ui=False)) as test_client:
        yield test_client


def _registry(calls: Calls) -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register("noop")
    def noop(n: int = 0) -> dict[str, Any]:
        calls.add("noop", n=n)
        return {}

    return reg


def test_a_catastrophic_pattern_is_answered_at_once_and_the_gateway_keeps_serving(
    client: TestClient, sqlite_db: Database, request: pytest.FixtureRequest
) -> None:
    pattern = "^(a+)+$"
    started = time.perf_counter()
    assert schema_problems({"type": "string", "pattern": pattern}, "a" * 40 + "!")
    check_ms = (time.perf_counter() - started) * 1000
    assert check_ms < 100, check_ms  # exponential under Python's re: seconds at 27 characters
    headers = token_for(sqlite_db, FINANCE)
    definition = {
        "name": "redos",
        "steps": [
            {
                "name": "ask",
                "type": "approval",
                "approval_config": {
                    "type": "form",
                    "requested_from": FINANCE,
                    "form_fields": [{"name": "code", "pattern": pattern}],
                },
            }
        ],
    }
    created = client.post(
        "/api/workflows", json={"definition": definition}, headers=token_for(sqlite_db, "agent@example.com")
    )
    assert created.status_code == 201, created.text
    build_runner(sqlite_db, lease_seconds=10).run_until_idle(max_seconds=30)
    [approval] = client.get("/api/approvals", headers=headers).json()
    answers: dict[str, Any] = {}

    def answer() -> None:
        begun = time.perf_counter()
        response = client.post(
            f"/api/approvals/{approval['id']}/respond",
            headers=headers,
            json={"decision": "approve", "data": {"code": "a" * 40 + "!"}},
        )
        answers["status"], answers["ms"] = response.status_code, (time.perf_counter() - begun) * 1000
        answers["body"] = response.json()

    worker = threading.Thread(target=answer)
    begun = time.perf_counter()
    worker.start()
    health = client.get("/healthz")
    probe_ms = (time.perf_counter() - begun) * 1000
    worker.join(ANSWER_BOUND)
    assert not worker.is_alive(), "the answer hung"
    assert health.status_code == 200
    assert answers["status"] == 422
    assert "does not match" in " ".join(answers["body"]["problems"])
    record_availability(request, "ReDoS pattern answer (40 characters)", 1, 1, answers["ms"], probe_ms)


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=a)b", "(?<!x)y"])
def test_patterns_re2_cannot_run_are_refused_when_loaded(pattern: str) -> None:
    text = (
        "name: x\nsteps:\n  - name: ask\n    type: approval\n    approval_config:\n"
        "      type: form\n      requested_from: a@example.com\n"
        f"      form_fields: [{{name: code, pattern: '{pattern}'}}]\n"
    )
    with pytest.raises(
        DefinitionError,
        match=r"form_fields\[0\]\.pattern: pattern .* is not "
        r"supported",
    ):
        load_definition_text(text)


def test_a_poison_workflow_fails_once_with_an_alert_while_a_probe_completes(
    sqlite_db: Database, calls: Calls, request: pytest.FixtureRequest
) -> None:
    registry = _registry(calls)
    poison = ops.create_workflow(
        sqlite_db,
        {
            "name": "poison",
            "steps": [
                {
                    "name": "ask",
                    "type": "approval",
                    "approval_config": {"type": "budget", "requested_from": FINANCE},
                }
            ],
        },
        input_data={"amount": "NaN"},
        created_by="agent@example.com",
    ).id
    probe = ops.create_workflow(
        sqlite_db,
        {"name": "probe", "steps": [{"name": "one", "type": "tool", "tool": "noop"}]},
        created_by="agent@example.com",
    ).id
    begun = time.perf_counter()
    build_runner(sqlite_db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)
    probe_ms = (time.perf_counter() - begun) * 1000
    assert ops.get_workflow(sqlite_db, probe).status == "completed"
    failed = ops.get_workflow(sqlite_db, poison)
    assert failed.status == "failed"
    assert "context_data.amount: must be a finite number" in (failed.error or "")
    errors = events(sqlite_db, poison, "engine.error")
    assert [e.data["attempt"] for e in errors] == [1, 2, 3]  # once per attempt, then it stops
    evaluate_alerts(sqlite_db)
    with sqlite_db.read() as session:
        from sqlalchemy import select

        from core.store.tables import Alert

        rules = session.scalars(select(Alert.rule).where(Alert.subject == poison)).all()
    assert "workflow_failed" in rules
    record_availability(request, "poison workflow (non-finite budget)", 3, 3, None, probe_ms)


def test_deeply_nested_input_is_refused_and_the_listing_stays_up(
    client: TestClient, sqlite_db: Database, request: pytest.FixtureRequest
) -> None:
    headers = token_for(sqlite_db, "agent@example.com")
    nested: Any = "x"
    for _ in range(300):
        nested = {"a": nested}
    definition = {"name": "n", "steps": [{"name": "c", "type": "checkpoint"}]}
    begun = time.perf_counter()
    response = client.post(
        "/api/workflows", headers=headers, json={"definition": definition, "input": {"deep": nested}}
    )
    answer_ms = (time.perf_counter() - begun) * 1000
    assert response.status_code == 422, response.text
    assert "nested deeper than 64 levels" in response.text
    deep_definition: Any = {"name": "d", "steps": [{"name": "c", "type": "checkpoint", "context": nested}]}
    assert (
        client.post("/api/workflows", headers=headers, json={"definition": deep_definition}).status_code
        == 422
    )
    listing = client.get("/api/workflows", headers=headers)
    assert listing.status_code == 200 and listing.json()["total"] == 0
    record_availability(request, "input and definition nested 300 deep", 2, 2, answer_ms, None)


def test_yaml_bombs_and_deep_yaml_are_refused_at_once(request: pytest.FixtureRequest) -> None:
    bomb = (
        "\n".join(
            [
                f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]"
                if n
                else "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"
                for n in range(9)
            ]
        )
        + "\nsteps: []\n"
    )
    deep = "steps:\n  - " + "[" * 5000 + "]" * 5000 + "\n"
    refused = 0
    slowest = 0.0
    for text, message in ((bomb, "aliases (*l0) are not allowed"), (deep, "nested too deeply")):
        begun = time.perf_counter()
        with pytest.raises(
            DefinitionError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
        ):
            load_definition_text(text)
        elapsed = time.perf_counter() - begun
        assert elapsed < 1.0, elapsed
        slowest = max(slowest, elapsed)
        refused += 1
    record_availability(request, "YAML bomb and 5,000-deep YAML", 2, refused, slowest * 1000, None)


def test_limits_are_refused_with_their_path(request: pytest.FixtureRequest) -> None:
    many = {"name": "big", "steps": [{"name": f"s{i}", "type": "checkpoint"} for i in range(1001)]}
    cases = [
        (many, "steps: 1,001 steps, more than the 1,000 allowed"),
        (
            {"steps": [{"name": "a", "type": "approval", "approval_config": {"timeout": 1e20}}]},
            "steps[0].approval_config.timeout: must be at most 366 days",
        ),
        (
            {
                "steps": [
                    {
                        "name": "a",
                        "type": "approval",
                        "approval_config": {"type": "budget", "context_data": {"amount": "inf"}},
                    }
                ]
            },
            "steps[0].approval_config.context_data.amount: must be a finite number",
        ),
        (
            {
                "steps": [
                    {
                        "name": "a",
                        "type": "approval",
                        "approval_config": {
                            "type": "form",
                            "schema": {
                                "$defs": {"n": {"properties": {"c": {"$ref": "#/$defs/n"}}}},
                                "$ref": "#/$defs/n",
                            },
                        },
                    }
                ]
            },
            "refers back to itself",
        ),
    ]
    from core.definitions.workflow import parse_definition

    for definition, message in cases:
        with pytest.raises(DefinitionError) as refused:
            parse_definition(definition)
        assert message in str(refused.value), str(refused.value)
    record_availability(
        request, "bounds at load (steps, duration, amount, $ref)", len(cases), len(cases), None, None
    )


def test_a_probe_completes_beside_a_10000_step_workflow(
    sqlite_db: Database, calls: Calls, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("COUNTERSIGN_MAX_STEPS", "10000")
    registry = _registry(calls)
    long = ops.create_workflow(
        sqlite_db,
        {
            "name": "long",
            "steps": [
                {"name": f"s{i}", "type": "tool", "tool": "noop", "args": {"n": i}} for i in range(10000)
            ],
        },
        created_by="agent@example.com",
    ).id
    runner = build_runner(sqlite_db, registry=registry, lease_seconds=10, dispatch_notifications=False)
    runner.start()
    try:
        wait_until(
            lambda: len(calls.of("noop")) >= 3, timeout=PROBE_BOUND, what="the long workflow to be under way"
        )
        begun = time.perf_counter()
        probe = ops.create_workflow(
            sqlite_db,
            {"name": "probe", "steps": [{"name": "one", "type": "tool", "tool": "noop", "args": {"n": -1}}]},
            created_by="agent@example.com",
        ).id
        wait_until(
            lambda: ops.get_workflow(sqlite_db, probe).status == "completed",
            timeout=PROBE_BOUND,
            what="the probe to complete",
        )
        probe_ms = (time.perf_counter() - begun) * 1000
        assert ops.get_workflow(sqlite_db, long).status == "running"  # they interleaved
    finally:
        runner.stop()
    add_user(sqlite_db, "admin@example.com", role="admin")
    ops.cancel_workflow(sqlite_db, long, "admin@example.com")
    record_availability(request, "probe beside a 10,000-step workflow", 1, "-", None, probe_ms)


def test_a_row_stored_before_the_limits_is_listed_as_unreadable(
    client: TestClient, sqlite_db: Database
) -> None:
    from sqlalchemy import update

    from core.store.tables import Workflow

    headers = token_for(sqlite_db, "agent@example.com")
    made = client.post(
        "/api/workflows",
        headers=headers,
        json={"definition": {"name": "ok", "steps": [{"name": "c", "type": "checkpoint"}]}},
    )
    assert made.status_code == 201, made.text
    nested: Any = "x"
    for _ in range(300):
        nested = {"a": nested}
    with sqlite_db.session() as session:  # as an older version could have stored it
        session.execute(
            update(Workflow).where(Workflow.id == made.json()["id"]).values(input_data={"deep": nested})
        )
    listing = client.get("/api/workflows", headers=headers)
    assert listing.status_code == 200, listing.text
    [row] = listing.json()["items"]
    assert (row["id"], row["unreadable"], row["name"]) == (made.json()["id"], True, "unreadable")


def test_a_stored_definition_that_no_longer_loads_fails_its_workflow_once(
    db: Database, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A definition stored before a check was added (here: a gate calling a method,
    refused since) cannot be parsed by the runner. Its workflow fails after the bounded
    attempts with the reason, like any poison workflow, instead of being claimed again
    at every lease expiry without end (the engine error's own handling parsed the
    definition too, and raised again)."""
    from sqlalchemy import update

    from core.store.tables import Workflow

    monkeypatch.setattr("core.engine.failures.ENGINE_ERROR_BACKOFF", 0.0)
    if db.dialect == "postgresql":  # the autouse accounts are SQLite's
        add_user(db, "agent@example.com", role="approver")
    registry = _registry(calls)
    workflow_id = ops.create_workflow(
        db,
        {"name": "old gate", "steps": [{"name": "one", "type": "tool", "tool": "noop"}]},
        created_by="agent@example.com",
    ).id
    stored = ops.get_workflow(db, workflow_id).definition
    stored["steps"][0]["requires_approval"] = {"when": "args.get('x') == 1"}
    with db.session() as session:
        session.execute(update(Workflow).where(Workflow.id == workflow_id).values(definition=stored))
    for _ in range(4):
        build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=30)
    failed = ops.get_workflow(db, workflow_id)
    assert failed.status == "failed", failed.status
    assert "args.get" in (failed.error or ""), failed.error
    assert [e.data["attempt"] for e in events(db, workflow_id, "engine.error")] == [1, 2, 3]
    assert calls.of("noop") == []  # the step never ran under a gate it could not read
