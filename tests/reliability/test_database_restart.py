"""PostgreSQL restarted during a run: the runner process and the dashboard carry on.

Every test here runs against a private cluster (tests/private_postgres.py),
never the shared server, because it stops and restarts it.
"""

# Fixtures are imported from other conftests and tests/reliability/_pg_fixtures.py
# (this folder's conftest is shared with other suites), so arguments shadow them.
# ruff: noqa: F811

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core.base.retry import database_answers, is_database_unavailable
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import StepRun, Workflow
from core.store.wakeup import CHANNEL
from tests.acceptance.core.conftest import ROOT, cli_env
from tests.integration.dashboard.conftest import _app_over, all_text, new_app, no_exception, open_page
from tests.private_postgres import PrivateCluster
from tests.reliability._pg_fixtures import private_cluster, private_pg_url  # noqa: F401
from tests.reliability.report import FaultResult, fault_table, show

pytestmark = pytest.mark.timeout(600)

WORKFLOWS = 8
STEPS = ("reserve", "charge", "confirm")
STEP_SECONDS = 0.3
LEASE_SECONDS = "3"
# Bounds on waiting for things that must happen (not measurements).
OUTAGE_NOTICED_WITHIN = 60.0
ALL_DONE_WITHIN = 240.0
# The runner's and dispatcher's "something went wrong" lines, which carry a
# traceback for real errors; a database outage must not produce them.
TRACEBACK_EVENTS = {
    "runner loop error; retrying",
    "workflow execution failed",
    "heartbeat failed",
    "dispatcher loop error; retrying",
}


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.1)


def tolerant(check: Callable[[], bool]) -> Callable[[], bool]:
    """``check``, reading False while the database is still coming back."""

    def run() -> bool:
        try:
            return check()
        except Exception as exc:  # noqa: BLE001
            if is_database_unavailable(exc):
                return False
            raise

    return run


def slow_workflow(calls_log: Path, index: int) -> dict[str, object]:
    return {
        "name": f"restart {index}",
        "steps": [
            {
                "name": step,
                "type": "tool",
                "tool": "log_and_sleep",
                "args": {"path": str(calls_log), "label": f"{index}:{step}", "seconds": STEP_SECONDS},
            }
            for step in STEPS
        ],
    }


# -- the engine in this process ------------------------------------------------------------


def test_a_database_object_works_again_after_a_restart(
    private_cluster: PrivateCluster, private_pg_url: str
) -> None:
    db = Database(private_pg_url)
    try:
        assert database_answers(db)
        private_cluster.stop()
        with pytest.raises(OperationalError) as down:
            ops.list_workflows(db, limit=5)
        assert is_database_unavailable(down.value)
        assert not database_answers(db)
        private_cluster.start()
        # The pool's connections died with the server; pre-ping replaces them.
        assert database_answers(db)
        workflow = ops.create_workflow(db, {"steps": [{"name": "a", "type": "checkpoint"}]})
        assert ops.get_workflow(db, workflow.id).status == "running"
    finally:
        db.dispose()


# -- a runner process ----------------------------------------------------------------------------


@contextlib.contextmanager
def runner_subprocess(url: str, log_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``python -m core runner`` against ``url``, JSON logs in ``log_path``; stopped after."""
    env = cli_env(
        url,
        COUNTERSIGN_LEASE_SECONDS=LEASE_SECONDS,
        COUNTERSIGN_TOOL_MODULES="tests.acceptance.core.slow_tools",
        COUNTERSIGN_LOG_FORMAT="json",
    )
    with log_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", "runner", "--concurrency", "2"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def runner_process(private_pg_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    log_path = tmp_path / "runner.log"
    with runner_subprocess(private_pg_url, log_path) as proc:
        yield proc, log_path


def log_records(path: Path) -> list[dict[str, object]]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            records.append({"event": line})
    return records


def calls_of(path: Path) -> list[tuple[str, str]]:
    """(label, idempotency key) of every tool call, in order."""
    if not path.exists():
        return []
    return [(label, key) for label, key, _pid in (line.split() for line in path.read_text().splitlines())]


def listening_sessions(cluster: PrivateCluster, dbname: str) -> int:
    with cluster.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query = %s",
            (dbname, f"LISTEN {CHANNEL}"),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_runner_process_carries_on_through_a_database_restart(
    private_cluster: PrivateCluster,
    private_pg_url: str,
    tmp_path: Path,
    runner_process: tuple[subprocess.Popen[str], Path],
    request: pytest.FixtureRequest,
) -> None:
    proc, runner_log = runner_process
    dbname = private_pg_url.rsplit("/", 1)[1]
    calls_log = tmp_path / "calls.log"
    db = Database(private_pg_url)
    try:
        wait_until(
            lambda: listening_sessions(private_cluster, dbname) == 1, 60, "the runner listens for wake-ups"
        )
        ids = [ops.create_workflow(db, slow_workflow(calls_log, i)).id for i in range(WORKFLOWS)]
        wait_until(lambda: len(calls_of(calls_log)) >= 4, 120, "the run is under way")

        private_cluster.stop()  # pg_ctl stop -m fast: every connection is cut mid-run
        wait_until(
            lambda: any("database unavailable" in str(r.get("event")) for r in log_records(runner_log)),
            OUTAGE_NOTICED_WITHIN,
            "the runner notices the outage",
        )
        private_cluster.start()

        # Started after the restart: claimed through the runner's new connections.
        ids.append(ops.create_workflow(db, slow_workflow(calls_log, WORKFLOWS)).id)

        def all_completed() -> bool:
            with db.read() as session:
                statuses = session.scalars(select(Workflow.status).where(Workflow.id.in_(ids))).all()
            return len(statuses) == len(ids) and set(statuses) == {"completed"}

        wait_until(tolerant(all_completed), ALL_DONE_WITHIN, "every workflow completes")
        assert proc.poll() is None, "the runner process is the same one, still running"
        wait_until(
            tolerant(lambda: listening_sessions(private_cluster, dbname) == 1),
            60,
            "the LISTEN connection is back",
        )

        with db.read() as session:
            runs = session.scalars(select(StepRun).where(StepRun.workflow_id.in_(ids))).all()
        # None lost, none doubled: exactly one completed run per step of every workflow.
        per_step = {(r.workflow_id, r.step_name): r for r in runs}
        assert len(runs) == len(per_step) == len(ids) * len(STEPS)
        assert {r.status for r in runs} == {"completed"}
        # A step that ran twice (its outcome lost with the connection) ran with its own key.
        key_of_label = {f"{ids.index(r.workflow_id)}:{r.step_name}": r.idempotency_key for r in runs}
        calls = calls_of(calls_log)
        statuses = {r.workflow_id: ops.get_workflow(db, r.workflow_id).status for r in runs}
        show(
            request,
            fault_table(
                [
                    FaultResult(
                        f"PostgreSQL restarted during a run ({len(ids)} workflows, no notifications)",
                        workflows_lost=len(set(ids) - set(statuses)),
                        stuck=sum(status != "completed" for status in statuses.values()),
                        steps_twice_without_key=sum(key != key_of_label.get(label) for label, key in calls),
                        notifications_lost=0,
                    )
                ]
            ),
        )
        assert {label for label, _ in calls} == set(key_of_label)
        assert all(key == key_of_label[label] for label, key in calls), calls

        # A second outage while the runner is idle: its loop backs off, then claims again.
        private_cluster.stop()
        wait_until(
            lambda: any(r.get("event") == "database unavailable; retrying" for r in log_records(runner_log)),
            OUTAGE_NOTICED_WITHIN,
            "the idle loop notices the outage",
        )
        private_cluster.start()
        last = ops.create_workflow(db, slow_workflow(calls_log, WORKFLOWS + 1)).id
        wait_until(
            tolerant(lambda: ops.get_workflow(db, last).status == "completed"),
            ALL_DONE_WITHIN,
            "a workflow started after the second restart completes",
        )
        assert proc.poll() is None

        records = log_records(runner_log)
        with_traceback = [r.get("event") for r in records if "Traceback" in json.dumps(r)]
        assert not set(with_traceback) & TRACEBACK_EVENTS, "the outage is logged in plain lines"
        assert any(r.get("event") == "listen connection lost; reconnecting" for r in records)
    finally:
        db.dispose()


def test_a_runner_started_before_the_database_waits_for_it(
    private_cluster: PrivateCluster, private_pg_url: str, tmp_path: Path
) -> None:
    private_cluster.stop()
    log_path = tmp_path / "runner.log"
    db = Database(private_pg_url)
    try:
        with runner_subprocess(private_pg_url, log_path) as proc:
            wait_until(
                lambda: (
                    sum(
                        r.get("event") == "database unavailable at start; retrying"
                        for r in log_records(log_path)
                    )
                    >= 2
                ),
                OUTAGE_NOTICED_WITHIN,
                "the runner waits for the database, retrying",
            )
            assert proc.poll() is None, "the runner waits instead of exiting"
            private_cluster.start()
            calls_log = tmp_path / "calls.log"
            workflow_id = ops.create_workflow(db, slow_workflow(calls_log, 0)).id
            wait_until(
                tolerant(lambda: ops.get_workflow(db, workflow_id).status == "completed"),
                ALL_DONE_WITHIN,
                "the runner runs a workflow once the database answers",
            )
            assert proc.poll() is None
            assert [label for label, _ in calls_of(calls_log)] == [f"0:{step}" for step in STEPS]
    finally:
        db.dispose()


def test_an_outage_longer_than_the_outcome_retry_hands_the_workflow_back(
    private_cluster: PrivateCluster, private_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome could not be recorded at all: once the database answers, the runner
    lets go of the lease at once (not after it runs out) and the step runs again, with its key."""
    import core.engine.failures

    monkeypatch.setattr(core.engine.failures, "OUTCOME_RETRY_SECONDS", 1.0)
    keys: list[str] = []
    registry = ToolRegistry()

    @registry.register("unplug")
    def unplug(idempotency_key: str) -> dict[str, object]:
        keys.append(idempotency_key)
        if len(keys) == 1:
            private_cluster.stop()  # the server goes away while the action runs
        return {"calls": len(keys)}

    db = Database(private_pg_url)
    runner = build_runner(db, registry=registry, lease_seconds=600, dispatch_notifications=False)
    try:
        workflow_id = ops.create_workflow(
            db, {"steps": [{"name": "pay", "type": "tool", "tool": "unplug"}]}
        ).id
        runner.start()
        wait_until(lambda: workflow_id in runner._interrupted, 60, "the execution is interrupted")
        private_cluster.start()
        # Bounded far below the 600 s lease: only the hand-back makes this possible.
        wait_until(
            tolerant(lambda: ops.get_workflow(db, workflow_id).status == "completed"),
            60,
            "the workflow completes after the outage",
        )
        assert len(keys) == 2 and len(set(keys)) == 1
        [run] = ops.step_runs_of(db, workflow_id)
        assert (run.status, run.idempotency_key) == ("completed", keys[0])
        resumed = [e for e in ops.events_of(db, workflow_id) if e.event_type == "step.resumed"]
        assert [e.data["idempotency_key"] for e in resumed] == [keys[0]]
    finally:
        runner.stop()
        db.dispose()


# -- the dashboard ----------------------------------------------------------------------------------


def test_the_dashboard_says_the_database_is_unavailable_then_recovers(
    private_cluster: PrivateCluster, private_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(private_pg_url)
    try:
        add_user(db, "ops@example.com", role="admin", password="restart-test-pw")
        ops.create_workflow(
            db, {"name": "Survives restarts", "steps": [{"name": "a", "type": "checkpoint"}]}, start=False
        )
        with _app_over(monkeypatch, private_pg_url):
            at = new_app()
            at.run()
            at.text_input(key="signin.email").input("ops@example.com")
            at.text_input(key="signin.password").input("restart-test-pw")
            at.button(key="signin.submit").click().run()
            open_page(at, "workflows")
            no_exception(at)
            assert "Survives restarts" in page_text(at)

            private_cluster.stop()
            at.run()  # the same session and server process, database down
            no_exception(at)
            notices = [w.value for w in at.warning]
            assert any("The database is unavailable; retrying" in str(n) for n in notices), notices
            assert "Survives restarts" not in page_text(at)

            private_cluster.start()
            at.run()
            no_exception(at)
            assert not [w for w in at.warning if "database is unavailable" in str(w.value)]
            assert "Survives restarts" in page_text(at)
    finally:
        db.dispose()


def page_text(at: object) -> str:
    """Headings, text and table cells of the page (the workflow list is a dataframe)."""
    parts = [all_text(at)]  # type: ignore[arg-type]
    for frame in getattr(at, "dataframe", []):
        parts.append(frame.value.to_string())
    return "\n".join(parts)
