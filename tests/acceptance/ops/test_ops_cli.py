"""``python -m core doctor``, ``export`` and ``import`` as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.approvals.engine import ApprovalEngine
from core.ops.backup import backup_tables
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import Workflow
from tests.acceptance.core.conftest import CLI_TIMEOUT, ROOT, cli, cli_env
from tests.integration.ops.test_backup import run_demo

pytestmark = pytest.mark.timeout(600)


def doctor(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", "doctor", *args],
        cwd=ROOT,
        env=cli_env(db_url),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


def refused(db_url: str, *args: str, code: int = 2) -> str:
    """A refused command: the kind's exit code (invalid 2, conflict 4), one ``error:``
    line, no traceback; returns that line.

    Other stderr lines (log records) are allowed; the reason must be one line.
    """
    done = subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=cli_env(db_url),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    [reason] = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    return reason


def dump(url: str) -> dict[str, list[dict[str, object]]]:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return {
                t.name: [dict(r._mapping) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in backup_tables()
            }
    finally:
        db.dispose()


def rows(url: str) -> int:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return sum(
                conn.execute(select(func.count()).select_from(t)).scalar_one() for t in backup_tables()
            )
    finally:
        db.dispose()


def test_export_from_sqlite_and_import_into_postgresql(sqlite_url: str, pg_url: str, tmp_path: Path) -> None:
    # The demo run to its approvals and one answered, through the Python API (fast);
    # the commands under test run as subprocesses.
    source = Database(sqlite_url)
    try:
        ids = run_demo(source)
    finally:
        source.dispose()
    backup = tmp_path / "countersign.jsonl"
    exported = cli(sqlite_url, "export", str(backup)).stdout
    assert exported.startswith("exported ") and str(backup) in exported
    header = json.loads(backup.read_text().splitlines()[0])
    assert header["format"] == "countersign-backup" and header["revision"]

    # A damaged file is refused in one plain line and leaves nothing behind.
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("".join(backup.read_text().splitlines(keepends=True)[:-5]))
    assert "incomplete" in refused(pg_url, "import", str(damaged))
    assert rows(pg_url) == 0

    imported = cli(pg_url, "import", str(backup)).stdout
    assert imported.startswith("imported ")
    assert dump(pg_url) == dump(sqlite_url)

    not_empty = refused(pg_url, "import", str(backup), code=4)
    assert "already holds data" in not_empty and "--merge" in not_empty
    assert "skipped" in cli(pg_url, "import", str(backup), "--merge").stdout

    # The half-answered review goes on in PostgreSQL.
    target = Database(pg_url)
    try:
        ApprovalEngine(target).respond_to_approval(
            ids["review"], "editor@example.com", "approve", {"verdict": "publish"}
        )
        build_runner(target).run_until_idle()
        with target.read() as session:
            workflow = session.get(Workflow, ids["review_workflow"])
            assert workflow is not None and workflow.status == "completed"
    finally:
        target.dispose()


def test_doctor_healthy_then_unreachable(pg_url: str) -> None:
    healthy = doctor(pg_url, "--json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    report = json.loads(healthy.stdout)
    assert report["healthy"] is True
    assert {c["name"]: c["status"] for c in report["checks"]}["migrations"] == "OK"

    down = doctor("postgresql://postgres@127.0.0.1:1/countersign")
    assert down.returncode == 1
    assert "Traceback" not in down.stdout + down.stderr
    failed = [line for line in down.stdout.splitlines() if line.startswith("FAIL")]
    assert failed and "database" in failed[0] and "did not answer" in failed[0]


def test_doctor_unmigrated_database(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    result = doctor(f"sqlite:///{path}")
    assert result.returncode == 1
    assert any(
        line.startswith("FAIL") and "migrations" in line and "db upgrade" in line
        for line in result.stdout.splitlines()
    ), result.stdout
