"""Retry policy: transient failures retried with backoff, counted across restarts;
a person retries a failed workflow from its failed step (CLI and dashboard)."""

# Fixtures are imported from the engine and dashboard conftests (this folder's
# conftest is shared with other suites), so test arguments shadow those names.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from core.base.errors import DatabaseError, DefinitionError, TransientError
from core.base.retry import backoff_delay, is_database_unavailable, is_transient
from core.definitions.workflow import RetryPolicy, WorkflowDefinition, definition_dict, parse_definition
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.runtime import build_runner
from core.store.db import Database
from tests.acceptance.core.conftest import cli
from tests.helpers.engine import (
    Calls,
    accounts,
    events,
    run,
    start,
    status,
    step_runs,
    tool,
)
from tests.integration.core.conftest import registry  # noqa: F401  (a fixture)
from tests.integration.dashboard.conftest import (  # noqa: F401  (fixtures)
    all_text,
    demo_db,
    demo_template,
    new_app,
    no_exception,
    open_page,
    sign_in,
)

# -- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_from_initial_up_to_the_cap() -> None:
    assert [backoff_delay(2, 2, 300, n) for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert [backoff_delay(0.5, 3, 10, n) for n in (1, 2, 3)] == [0.5, 1.5, 4.5]
    assert backoff_delay(1, 1, 60, 50) == 1  # multiplier 1: a constant wait


def test_backoff_of_a_huge_attempt_number_is_the_cap() -> None:
    assert backoff_delay(2, 10, 300, 10_000) == 300


# -- the policy in a definition -------------------------------------------------------------


def test_defaults_are_three_attempts_on_transient_errors() -> None:
    policy = parse_definition({"steps": [{"name": "a", "type": "tool", "tool": "t"}]}).steps[0].retry
    assert policy.max_attempts == 3
    assert (policy.backoff.initial, policy.backoff.multiplier, policy.backoff.max) == (2, 2, 300)
    assert policy.on == ["transient"]
    assert [policy.delay(n) for n in (1, 2)] == [2, 4]


def test_the_full_spelling_and_the_seed_spelling() -> None:
    full, seed = parse_definition(
        {
            "steps": [
                {
                    "name": "a",
                    "type": "tool",
                    "tool": "t",
                    "retry": {
                        "max_attempts": 5,
                        "backoff": {"initial": "1s", "multiplier": 3, "max": "1m"},
                        "on": ["any"],
                    },
                },
                {
                    "name": "b",
                    "type": "tool",
                    "tool": "t",
                    "retry": {"attempts": 4, "backoff": "10s", "factor": 1.5, "max_backoff": "2m"},
                },
            ]
        }
    ).steps
    assert (full.retry.max_attempts, full.retry.on) == (5, ["any"])
    assert [full.retry.delay(n) for n in (1, 2, 3, 4)] == [1, 3, 9, 27]
    assert (seed.retry.max_attempts, seed.retry.on) == (4, ["any"])  # the seed retried any failure
    assert (seed.retry.backoff.initial, seed.retry.backoff.multiplier, seed.retry.backoff.max) == (
        10,
        1.5,
        120,
    )


def test_workflow_level_retry_under_each_step_s_own_fields() -> None:
    definition = parse_definition(
        {
            "retry": {"max_attempts": 6, "backoff": {"initial": "5s", "max": "1m"}},
            "steps": [
                {"name": "a", "type": "tool", "tool": "t"},
                {
                    "name": "b",
                    "type": "tool",
                    "tool": "t",
                    "retry": {"max_attempts": 2, "backoff": {"max": "10s"}},
                },
            ],
        }
    )
    a, b = (step.retry for step in definition.steps)
    assert (a.max_attempts, a.backoff.initial, a.backoff.max) == (6, 5, 60)
    assert (b.max_attempts, b.backoff.initial, b.backoff.max) == (2, 5, 10)
    # Stored and read back (as a runner reads it), each step keeps its whole policy.
    stored = WorkflowDefinition.model_validate(definition_dict(definition))
    assert [s.retry for s in stored.steps] == [a, b]


def test_a_definition_stored_before_retry_policies_reads_back_unchanged() -> None:
    old = {
        "steps": [
            {
                "name": "a",
                "type": "tool",
                "tool": "t",
                "retry": {"attempts": 1, "backoff": 1.0, "factor": 2.0, "max_backoff": 3600.0},
            }
        ]
    }
    policy = WorkflowDefinition.model_validate(old).steps[0].retry
    assert (policy.max_attempts, policy.backoff.initial, policy.backoff.max) == (1, 1, 3600)


@pytest.mark.parametrize(
    ("retry", "problem"),
    [
        ({"on": ["sometimes"]}, "steps[0].retry.on[0]: must be one of transient, any"),
        ({"max_attempts": 0}, "steps[0].retry.max_attempts: input should be greater than or equal to 1"),
        ({"backoff": {"initial": "soon"}}, "steps[0].retry.backoff.initial: must be a duration"),
        ({"attempts": 2, "max_attempts": 3}, "steps[0].retry.attempts: give max_attempts or attempts"),
    ],
)
def test_a_bad_retry_policy_is_refused_by_path(retry: dict[str, Any], problem: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_definition({"steps": [{"name": "a", "type": "tool", "tool": "t", "retry": retry}]})
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems


# -- what is transient ---------------------------------------------------------------------------


def _caused_by(outer: Exception, cause: BaseException) -> Exception:
    try:
        raise outer from cause
    except Exception as exc:  # noqa: BLE001 - building the chain
        return exc


def _in_context_of(outer: Exception, context: BaseException) -> Exception:
    try:
        try:
            raise context
        except BaseException:  # noqa: BLE001
            raise outer  # noqa: B904 - an implicit context, not a cause
    except Exception as exc:  # noqa: BLE001
        return exc


DROPPED = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")

TRANSIENT = {
    "database dropped": DROPPED,
    "connection invalidated": DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
    "timeout": TimeoutError("step timed out after 5s"),
    "connection refused": ConnectionRefusedError(111, "Connection refused"),
    "connection reset": ConnectionResetError(104, "reset by peer"),
    "httpx read timeout": httpx.ReadTimeout("timed out", request=REQUEST),
    "httpx connect error": httpx.ConnectError("refused", request=REQUEST),
    "model timeout": openai.APITimeoutError(request=REQUEST),
    "model unreachable": openai.APIConnectionError(request=REQUEST),
    "a tool says so": TransientError("the payment gateway is in maintenance"),
    "wrapped by an agent library": _caused_by(RuntimeError("model call failed"), TimeoutError()),
    "translated database outage": _caused_by(DatabaseError("unavailable"), DROPPED),
}
PERMANENT = {
    "bug": ValueError("amount must be positive"),
    "missing key": KeyError("order_id"),
    "refused write": IntegrityError("INSERT", {}, Exception("duplicate key")),
    "translated refusal": DatabaseError("The database refused a conflicting write"),
    "only while handling a timeout": _in_context_of(ValueError("bad"), TimeoutError()),
    "http 400": openai.BadRequestError("bad", response=httpx.Response(400, request=REQUEST), body=None),
}


@pytest.mark.parametrize("exc", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", PERMANENT.values(), ids=PERMANENT.keys())
def test_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_database_unavailable_is_only_the_database() -> None:
    assert is_database_unavailable(DROPPED)
    assert is_database_unavailable(_caused_by(DatabaseError("unavailable"), DROPPED))
    assert not is_database_unavailable(TimeoutError())
    assert not is_database_unavailable(IntegrityError("INSERT", {}, Exception("duplicate key")))


def test_retries_counts_attempts_and_honours_on() -> None:
    transient_only = RetryPolicy(max_attempts=3)
    assert transient_only.retries(TimeoutError(), 1) and transient_only.retries(TimeoutError(), 2)
    assert not transient_only.retries(TimeoutError(), 3)  # the third was the last
    assert not transient_only.retries(ValueError(), 1)
    assert RetryPolicy.model_validate({"max_attempts": 2, "on": ["any"]}).retries(ValueError(), 1)


# -- the executor ---------------------------------------------------------------------------


@pytest.fixture
def flaky(registry: ToolRegistry, calls: Calls) -> dict[str, Any]:
    """``charge`` fails with ``plan["errors"]`` in order, then succeeds."""
    plan: dict[str, Any] = {"errors": []}

    @registry.register("charge")
    def charge(amount: int, idempotency_key: str) -> dict[str, Any]:
        calls.add("charge", amount=amount, key=idempotency_key)
        if plan["errors"]:
            raise plan["errors"].pop(0)
        return {"charged": amount}

    return plan


def charge_step(**extra: Any) -> dict[str, Any]:
    return {"name": "charge", "type": "tool", "tool": "charge", "args": {"amount": 90}, **extra}


FAST = {"backoff": {"initial": "20ms", "multiplier": 2, "max": "1s"}}


def test_transient_twice_then_success_takes_three_attempts(
    db: Database, registry: ToolRegistry, calls: Calls, flaky: dict[str, Any]
) -> None:
    flaky["errors"] = [ConnectionResetError(104, "reset by peer"), TimeoutError("gateway timeout")]
    workflow_id = start(db, [tool("reserve"), charge_step(retry=FAST), tool("confirm")])
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    runs = [r for r in step_runs(db, workflow_id) if r.step_name == "charge"]
    assert [(r.status, r.attempt) for r in runs] == [("failed", 1), ("failed", 2), ("completed", 3)]
    assert runs[0].error == "ConnectionResetError: [Errno 104] reset by peer"
    assert len({r.idempotency_key for r in runs}) == 1  # one effect, one key for the tool
    assert {c["key"] for c in calls.of("charge")} == {runs[0].idempotency_key}
    scheduled = events(db, workflow_id, "step.retry_scheduled")
    assert [
        (e.data["attempt"], e.data["next_attempt"], e.data["delay"], e.data["transient"]) for e in scheduled
    ] == [(1, 2, 0.02, True), (2, 3, 0.04, True)]
    assert "reset by peer" in scheduled[0].data["reason"]
    assert "gateway timeout" in scheduled[1].data["reason"]
    started = [e.data["attempt"] for e in events(db, workflow_id, "step.started") if e.step_name == "charge"]
    assert started == [1, 2, 3]
    assert events(db, workflow_id, "step.resumed") == []  # a retry is not a crash recovery
    assert [c["label"] for c in calls.of("do")] == ["reserve", "confirm"]


def test_exhausted_retries_fail_with_the_last_error(
    db: Database, registry: ToolRegistry, calls: Calls, flaky: dict[str, Any]
) -> None:
    flaky["errors"] = [TransientError("gateway busy (1)"), TransientError("gateway busy (2)")]
    workflow_id = start(db, [charge_step(retry={**FAST, "max_attempts": 2}), tool("confirm")])
    run(db, registry)
    workflow = ops.get_workflow(db, workflow_id)
    assert workflow.status == "failed"
    assert workflow.error == "Step 'charge' failed: TransientError: gateway busy (2)"
    assert [(r.status, r.attempt) for r in step_runs(db, workflow_id)] == [("failed", 1), ("failed", 2)]
    assert len(events(db, workflow_id, "step.retry_scheduled")) == 1
    [failed] = events(db, workflow_id, "step.failed")
    assert (failed.data["attempt"], failed.data["transient"]) == (2, True)
    assert calls.of("do") == []


def test_a_permanent_error_fails_at_once(
    db: Database, registry: ToolRegistry, calls: Calls, flaky: dict[str, Any]
) -> None:
    flaky["errors"] = [ValueError("card number is invalid")]
    workflow_id = start(db, [charge_step(retry={**FAST, "max_attempts": 5})])
    run(db, registry)
    assert status(db, workflow_id) == "failed"
    assert len(calls.of("charge")) == 1
    assert events(db, workflow_id, "step.retry_scheduled") == []


def test_on_any_retries_every_error_and_the_workflow_level_policy_applies(
    db: Database, registry: ToolRegistry, calls: Calls, flaky: dict[str, Any]
) -> None:
    flaky["errors"] = [ValueError("flaky validation"), ValueError("flaky validation")]
    workflow_id = ops.create_workflow(db, {"retry": {**FAST, "on": ["any"]}, "steps": [charge_step()]}).id
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert len(calls.of("charge")) == 3


def test_a_restart_during_the_backoff_counts_on(
    db_url: str, registry: ToolRegistry, calls: Calls, flaky: dict[str, Any]
) -> None:
    flaky["errors"] = [TimeoutError(f"timeout {n}") for n in range(1, 6)]
    first = Database(db_url)
    workflow_id = start(first, [charge_step(retry={"max_attempts": 3, "backoff": {"initial": "300ms"}})])
    # The first runner stops while the retry waits (it does not wait for it): a shutdown.
    build_runner(first, registry=registry, lease_seconds=10).run_until_idle(wait_for_retries=False)
    assert [(r.status, r.attempt) for r in step_runs(first, workflow_id)] == [("failed", 1)]
    assert status(first, workflow_id) == "running"
    first.dispose()
    # A new process: its own engine and runner, nothing carried over but the database.
    second = Database(db_url)
    try:
        build_runner(second, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)
        workflow = ops.get_workflow(second, workflow_id)
        assert workflow.status == "failed"  # after three attempts in all, not three more
        assert [(r.status, r.attempt) for r in step_runs(second, workflow_id)] == [
            ("failed", 1),
            ("failed", 2),
            ("failed", 3),
        ]
        assert workflow.error == "Step 'charge' failed: TimeoutError: timeout 3"
        assert len(calls.of("charge")) == 3
    finally:
        second.dispose()


# -- a person retries from the failed step -----------------------------------------------------


def failed_at_charge(db: Database, registry: ToolRegistry, flaky: dict[str, Any]) -> str:
    flaky["errors"] = [ValueError("card declined")]
    workflow_id = start(db, [tool("reserve"), charge_step(), tool("confirm")])
    run(db, registry)
    assert status(db, workflow_id) == "failed"
    return workflow_id


def test_cli_retry_resumes_from_the_failed_step_and_refuses_otherwise(
    sqlite_db: Database, registry: ToolRegistry, calls: Calls, flaky: dict[str, Any]
) -> None:
    db = sqlite_db
    workflow_id = failed_at_charge(db, registry, flaky)
    url = db.url
    accounts(db, "approver", "ops@example.com")  # retrying needs workflows:retry
    done = cli(url, "workflow", "retry", workflow_id, "--as", "ops@example.com")
    assert done.stdout.split() == [workflow_id, "running"]
    [retried] = events(db, workflow_id, "workflow.retried")
    assert (retried.actor, retried.step_name) == ("ops@example.com", "charge")
    assert retried.data["error"] == "Step 'charge' failed: ValueError: card declined"
    refused = cli(url, "workflow", "retry", workflow_id, "--as", "ops@example.com", ok=False)
    assert refused.stderr.strip() == ("error: Only a failed workflow can be retried; this one is running.")
    run(db, registry)
    assert status(db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["reserve", "confirm"]  # reserve ran once
    charges = [r for r in step_runs(db, workflow_id) if r.step_name == "charge"]
    assert [(r.status, r.attempt) for r in charges] == [("failed", 1), ("completed", 1)]
    assert charges[0].idempotency_key != charges[1].idempotency_key  # a person's new try


def test_dashboard_shows_the_error_and_retries_from_the_failed_step(
    demo_db: Database, registry: ToolRegistry, calls: Calls, flaky: dict[str, Any]
) -> None:
    workflow_id = failed_at_charge(demo_db, registry, flaky)
    viewer = sign_in(new_app(), "viewer@example.com")
    open_page(viewer, "workflow", workflow=workflow_id)
    no_exception(viewer)
    assert "Step 'charge' failed: ValueError: card declined" in all_text(viewer)
    assert "workflow.retry" not in {b.key for b in viewer.button}

    at = sign_in(new_app(), "devops@example.com")
    open_page(at, "workflow", workflow=workflow_id)
    no_exception(at)
    assert "Step 'charge' failed: ValueError: card declined" in all_text(at)
    button = at.button(key="workflow.retry")
    assert button.label == "Retry from charge"
    button.click().run()
    no_exception(at)
    assert "Retrying from the failed step." in all_text(at)
    assert status(demo_db, workflow_id) == "running"
    [retried] = events(demo_db, workflow_id, "workflow.retried")
    assert retried.actor == "devops@example.com"
    run(demo_db, registry)
    assert status(demo_db, workflow_id) == "completed"
    assert [c["label"] for c in calls.of("do")] == ["reserve", "confirm"]
