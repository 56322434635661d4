"""``core.ops.doctor``: one finding per check, plain words, FAIL only when Countersign cannot work."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import insert

from core.ops.doctor import FAIL, OK, WARN, Check, healthy, run_checks
from core.store.db import Database
from core.store.tables import Notification, RunnerHeartbeat, utcnow


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


@pytest.fixture(autouse=True)
def no_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("COUNTERSIGN_LINK_SECRETS", "COUNTERSIGN_SESSION_SECRET", "COUNTERSIGN_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", str(tmp_path / "no-secrets.toml"))


def test_healthy_database(db_url: str, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "a-long-link-secret-1234")
    with db.session() as session:
        session.add(RunnerHeartbeat(runner_id="r1", last_seen_at=utcnow()))
    checks = by_name(run_checks())
    assert healthy(list(checks.values()))
    for name in ("settings", "database_url", "database", "migrations", "runners", "notifications"):
        assert checks[name].status == OK, checks[name]
    assert checks["COUNTERSIGN_LINK_SECRETS"].status == OK
    assert "a-long-link-secret-1234" not in checks["COUNTERSIGN_LINK_SECRETS"].message
    assert "1234" in checks["COUNTERSIGN_LINK_SECRETS"].message  # masked: last characters only
    assert checks["COUNTERSIGN_SESSION_SECRET"].status == WARN
    assert "1 runner(s)" in checks["runners"].message
    assert {"channel email", "channel slack", "channel webhook"} <= set(checks)


def test_warnings_for_no_runner_and_dead_notifications(
    sqlite_url: str, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    with sqlite_db.engine.begin() as conn:
        conn.execute(
            insert(Notification.__table__),
            [
                {
                    "id": f"n{i}",
                    "channel": "email",
                    "recipient": "a@example.com",
                    "status": "dead",
                    "attempts": 8,
                    "next_attempt_at": utcnow(),
                    "payload": {},
                    "external_ref": {},
                    "kind": "approval.requested",
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                }
                for i in range(2)
            ],
        )
    checks = by_name(run_checks())
    assert healthy(list(checks.values()))  # warnings only
    assert checks["runners"].status == WARN and "No runner" in checks["runners"].message
    assert checks["notifications"].status == WARN
    assert checks["notifications"].message.startswith("2 notification(s) are dead")


def test_unmigrated_database_fails_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    checks = by_name(run_checks())
    assert checks["database"].status == OK
    assert checks["migrations"].status == FAIL
    assert "python -m core db upgrade" in checks["migrations"].message
    assert not healthy(list(checks.values()))
    assert "channels" not in checks  # nothing else is asked of a database without tables


def test_unreachable_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://countersign:hunter2secret@127.0.0.1:1/nothing")
    checks = by_name(run_checks())
    assert checks["database"].status == FAIL
    assert "did not answer" in checks["database"].message
    assert "hunter2secret" not in " ".join(c.message for c in checks.values())
    assert not healthy(list(checks.values()))


def test_unparsable_url_and_production_without_link_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "this is not a url")
    monkeypatch.setenv("COUNTERSIGN_ENV", "production")
    checks = by_name(run_checks())
    assert checks["database_url"].status == FAIL
    assert checks["COUNTERSIGN_LINK_SECRETS"].status == FAIL
