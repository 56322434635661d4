"""``python -m core runner --metrics-port``: a real runner process serves Prometheus metrics.

The runner runs a workflow (tool, approval, tool); the test answers the
approval in between and scrapes the runner's endpoint: its own step counters
and resume latency moved, and the database metrics are served beside them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from tests.acceptance.core.conftest import cli_env
from tests.integration.channels.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
WAIT = 30.0


def wait_for(condition: Any, what: str, process: subprocess.Popen[str] | None = None) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"runner exited ({process.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"not within {WAIT:g} s: {what}")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def runner_process(db_url: str, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    stderr_path = tmp_path / "runner.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "runner", "--metrics-port", str(port)],
            cwd=ROOT,
            env=cli_env(
                db_url,
                COUNTERSIGN_LOG_FORMAT="json",
                COUNTERSIGN_LEASE_SECONDS="5",
                COUNTERSIGN_DEFAULT_CHANNELS="email",
            ),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        try:

            def up() -> bool:
                try:
                    scrape(port)
                    return True
                except OSError:
                    return False

            wait_for(up, "the metrics endpoint answers", process)
            yield port, stderr_path
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_runner_serves_its_step_counters_and_resume_latency(
    db_url: str, runner_process: tuple[int, Path]
) -> None:
    port, stderr_path = runner_process
    before = scrape(port)
    assert value(before, "countersign_steps_executed_total", type="tool", outcome="completed") == 0

    db = Database(db_url)
    try:
        release = {"service": "api", "version": "1.2"}
        add_user(db, "agent@example.com", role="service")  # who starts a workflow has an account
        workflow = ops.create_workflow(
            db,
            {
                "name": "release",
                "steps": [
                    {
                        "name": "checks",
                        "type": "tool",
                        "tool": "run_checks",
                        "args": {"service": "${input.service}", "version": "${input.version}"},
                    },
                    {
                        "name": "go",
                        "type": "approval",
                        "approval_config": {"requested_from": "ops@example.com", "channels": []},
                    },
                    {
                        "name": "deploy",
                        "type": "tool",
                        "tool": "deploy_release",
                        "args": {"service": "${input.service}", "version": "${input.version}"},
                    },
                ],
            },
            input_data=release,
            created_by="agent@example.com",
        )
        engine = ApprovalEngine(db)
        [approval] = wait_for(
            lambda: engine.list_pending_approvals(workflow_id=workflow.id), "the runner asks for approval"
        )
        engine.respond_to_approval(approval.id, "ops@example.com", "approve", channel="cli")
        wait_for(
            lambda: ops.get_workflow(db, workflow.id).status == "completed",
            "the runner finishes the workflow",
        )
    finally:
        db.dispose()

    after = scrape(port)
    assert value(after, "countersign_steps_executed_total", type="tool", outcome="completed") == 2
    assert value(after, "countersign_steps_executed_total", type="approval", outcome="waiting_approval") == 1
    assert value(after, "countersign_steps_executed_total", type="approval", outcome="completed") == 1
    assert value(after, "countersign_resume_latency_seconds_count") == 1
    assert 0 <= value(after, "countersign_resume_latency_seconds_sum") < WAIT
    assert value(after, "countersign_runner_claims_total") >= 2
    assert value(after, "countersign_runner_errors_total", where="loop", kind="database") == 0
    # The database collector rides along: the same names as the gateway's /metrics.
    assert value(after, "countersign_workflows", status="completed") == 1
    assert value(after, "countersign_approvals_decided_total", outcome="approved", channel="cli") == 1
    assert value(after, "countersign_runner_lag_seconds") == 0

    # The CLI configured JSON logging: its log lines are JSON, bound to the workflow.
    lines = [json.loads(line) for line in stderr_path.read_text().splitlines() if line.startswith("{")]
    started = [line for line in lines if line.get("event") == "step started"]
    assert {line["step"] for line in started} == {"checks", "go", "deploy"}
    assert all(line["workflow_id"] == workflow.id for line in started)
