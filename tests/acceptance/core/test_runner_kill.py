"""Two ``python -m core runner`` processes on PostgreSQL; the one executing a step is
killed with SIGKILL and the other finishes the workflow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import RunnerHeartbeat
from tests.acceptance.core.conftest import ROOT, cli_env

# Each command is a fresh interpreter (~3 s of imports); on a busy machine that adds up.
pytestmark = pytest.mark.timeout(900)

LEASE_SECONDS = "2"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


@pytest.fixture
def runners(pg_url: str) -> Iterator[list[subprocess.Popen[str]]]:
    env = cli_env(
        pg_url,
        COUNTERSIGN_LEASE_SECONDS=LEASE_SECONDS,
        COUNTERSIGN_TOOL_MODULES="tests.acceptance.core.slow_tools",
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "core", "runner"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def log_lines(path: Path) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    return [
        (label, key, int(pid)) for label, key, pid in (line.split() for line in path.read_text().splitlines())
    ]


def test_sigkill_mid_step_and_another_runner_finishes(
    pg_db: Database, runners: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    def registered() -> int:
        with pg_db.read() as session:
            return session.scalar(select(func.count()).select_from(RunnerHeartbeat)) or 0

    wait_until(lambda: registered() == 2, 60, "both runners started")
    log = tmp_path / "calls.log"

    def step(label: str, seconds: float) -> dict[str, object]:
        return {
            "name": label,
            "type": "tool",
            "tool": "log_and_sleep",
            "args": {"path": str(log), "label": label, "seconds": seconds},
        }

    add_user(pg_db, "ops@example.com", role="service")  # it starts the workflow
    workflow_id = ops.create_workflow(
        pg_db,
        {"name": "kill me", "steps": [step("a", 0), step("slow", 60), step("c", 0)]},
        created_by="ops@example.com",
    ).id

    wait_until(lambda: any(label == "slow" for label, _, _ in log_lines(log)), 60, "the slow step started")
    [(_, first_key, victim_pid)] = [line for line in log_lines(log) if line[0] == "slow"]
    pids = {proc.pid: proc for proc in runners}
    assert victim_pid in pids, "the step ran in one of our runner processes"
    os.kill(victim_pid, signal.SIGKILL)
    pids[victim_pid].wait(10)
    survivor = next(pid for pid in pids if pid != victim_pid)

    wait_until(
        lambda: ops.get_workflow(pg_db, workflow_id).status == "completed",
        60,
        "the surviving runner finished the workflow",
    )
    calls = log_lines(log)
    assert [label for label, _, _ in calls] == ["a", "slow", "slow", "c"]
    (_, key_a, _), (_, key1, _), (_, key2, pid2), (_, _, pid_c) = calls
    assert key1 == key2 == first_key  # the interrupted step ran again with the same key
    assert pid2 == pid_c == survivor
    events = ops.events_of(pg_db, workflow_id)
    resumed = [e for e in events if e.event_type == "step.resumed"]
    assert [(e.step_name, e.data["idempotency_key"]) for e in resumed] == [("slow", first_key)]
    assert [e.step_name for e in events if e.event_type == "step.completed"] == ["a", "slow", "c"]
    assert key_a != first_key
    output = ops.get_workflow(pg_db, workflow_id).step_outputs["slow"]
    assert output == {"label": "slow", "pid": survivor, "rerun": True}
