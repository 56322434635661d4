"""A runner process is SIGKILLed while an agent waits for a person, or in the
middle of its run; a new process picks the run up from the saved memory and
finishes it with the approver's decision (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import utcnow
from tests.acceptance.core.conftest import ROOT, cli_env
from tests.helpers.engine import event_types, open_approval_of, wait_until
from tests.helpers.models import TEST_PYTHON_MODELS
from tests.integration.agents.scripted import scripted

BOSS = "boss@example.com"
TIMEOUT = 120  # bounds for a loaded machine, not measurements


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {"calls": tmp_path / "calls.jsonl", "seen": tmp_path / "seen.jsonl"}


def env(db_url: str, files: dict[str, Path], **extra: str) -> dict[str, str]:
    return cli_env(
        db_url,
        COUNTERSIGN_TOOL_MODULES="tests.acceptance.agents.kill_tools",
        COUNTERSIGN_LEASE_SECONDS="2",
        COUNTERSIGN_PYTHON_MODELS=TEST_PYTHON_MODELS,  # the scripted model (cli_env drops COUNTERSIGN_*)
        AGENT_CALLS_FILE=str(files["calls"]),
        SCRIPTED_SEEN_FILE=str(files["seen"]),
        **extra,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def calls_of(files: dict[str, Path], tool: str) -> list[dict[str, Any]]:
    return [c for c in lines(files["calls"]) if c["tool"] == tool]


def runner(
    db_url: str, files: dict[str, Path], processes: list[subprocess.Popen[str]], **extra: str
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "runner"],
        cwd=ROOT,
        env=env(db_url, files, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    processes.append(process)
    return process


def run_until_idle(db_url: str, files: dict[str, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core", "runner", "--until-idle"],
        cwd=ROOT,
        env=env(db_url, files),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr


def kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def test_killed_while_parked_a_new_process_resumes_with_the_decision(
    db: Database,
    db_url: str,
    files: dict[str, Path],
    processes: list[subprocess.Popen[str]],
) -> None:
    add_user(db, "agent@example.com", role="service")  # it starts the workflow
    workflow = ops.create_workflow(
        db,
        {
            "name": "refund",
            "steps": [
                {
                    "name": "agent",
                    "type": "task",
                    "task": "Charge order A-1.",
                    "agent": scripted(
                        [
                            {"call": "lookup", "args": {"order": "A-1"}},
                            {"call": "charge", "args": {"amount": 120.0}},
                            {"final": "charged"},
                        ],
                        tools=["lookup"],
                        held_tools=["charge"],
                        approval={"requested_from": BOSS},
                    ),
                }
            ],
        },
        created_by="agent@example.com",
    )
    first = runner(db_url, files, processes)
    wait_until(
        lambda: ops.get_workflow(db, workflow.id).status == "waiting_approval",
        TIMEOUT,
        "the agent parks its held call",
    )
    kill(first)
    assert calls_of(files, "charge") == []
    ApprovalEngine(db).respond_to_approval(
        open_approval_of(db, workflow.id).id,
        BOSS,
        "modify",
        data={"arguments": {"amount": 99.5}},
        comment="partial refund only",
    )
    run_until_idle(db_url, files)
    done = ops.get_workflow(db, workflow.id)
    assert done.status == "completed", done.error
    assert done.step_outputs["agent"]["result"] == "charged"
    [charged] = calls_of(files, "charge")
    assert charged["amount"] == 99.5 and charged["pid"] != first.pid
    assert [c["pid"] for c in calls_of(files, "lookup")] == [first.pid]  # not redone
    resumed_prompt = lines(files["seen"])[-1]["last"]
    told = json.loads(resumed_prompt.split("Observation:\n", 1)[1])
    assert (told["comment"], told["arguments_changed_by_approver"]) == (
        "partial refund only",
        {"amount": 99.5},
    )


def test_killed_mid_run_a_new_process_continues_after_the_last_finished_step(
    db: Database,
    db_url: str,
    files: dict[str, Path],
    processes: list[subprocess.Popen[str]],
) -> None:
    add_user(db, "agent@example.com", role="service")  # it starts the workflow
    workflow = ops.create_workflow(
        db,
        {
            "name": "export",
            "steps": [
                {
                    "name": "agent",
                    "type": "task",
                    "task": "Export order A-2.",
                    "agent": scripted(
                        [
                            {"call": "lookup", "args": {"order": "A-2"}},
                            {"call": "slow_export", "args": {"order": "A-2"}},
                            {"final": "exported"},
                        ],
                        tools=["lookup", "slow_export"],
                    ),
                }
            ],
        },
        created_by="agent@example.com",
    )
    first = runner(db_url, files, processes, AGENT_SLOW_BLOCK="1")
    wait_until(lambda: bool(calls_of(files, "slow_export")), TIMEOUT, "the slow call starts")
    kill(first)

    def lease_lapsed() -> bool:
        lease = ops.get_workflow(db, workflow.id).lease_expires_at
        return lease is None or lease < utcnow()

    wait_until(lease_lapsed, 30, "the dead runner's lease lapses")
    run_until_idle(db_url, files)
    done = ops.get_workflow(db, workflow.id)
    assert done.status == "completed", done.error
    assert [c["pid"] for c in calls_of(files, "lookup")] == [first.pid]
    keys = [c["key"] for c in calls_of(files, "slow_export")]
    assert len(keys) == 2 and keys[0] == keys[1]  # the interrupted call again, same key
    assert "agent.continued" in event_types(db, workflow.id)
