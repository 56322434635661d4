"""``python -m core doctor``: what is wrong with this installation, in plain words.

Each check gives one line, OK, WARN or FAIL. A FAIL means Countersign cannot
work as configured (no settings, no database, schema behind the code); a
WARN means it works but something needs attention (a secret missing, no
runner alive, notifications given up on). Checks that need the database are
skipped (and say so) when it does not answer.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from core.base.secrets import mask, secret

OK, WARN, FAIL = "OK", "WARN", "FAIL"
CONNECT_TIMEOUT_SECONDS = 3
RUNNER_SEEN_WITHIN = timedelta(minutes=1)
PRODUCTION_SECRETS = {
    "COUNTERSIGN_LINK_SECRETS": "email approval links are signed with a labelled development key",
    "COUNTERSIGN_SESSION_SECRET": "gateway sessions use a key that changes on every restart",
}


@dataclass
class Check:
    name: str
    status: str
    message: str


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def check_settings() -> tuple[list[Check], Any]:
    from pydantic import ValidationError

    from core.base.config import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return [Check("settings", FAIL, f"The settings do not load: {problems}")], None
    return [Check("settings", OK, f"Settings loaded (environment {settings.environment}).")], settings


def check_secrets(environment: str) -> list[Check]:
    checks = []
    production = environment == "production"
    for name, without in PRODUCTION_SECRETS.items():
        value = secret(name)
        if value:
            checks.append(Check(name, OK, f"{name} is set ({mask(value)})."))
        else:
            checks.append(
                Check(
                    name,
                    FAIL if production and name == "COUNTERSIGN_LINK_SECRETS" else WARN,
                    f"{name} is not set: {without}; set it for production.",
                )
            )
    return checks


def database_url(settings: Any) -> str:
    return os.environ.get("DATABASE_URL") or (settings.database_url if settings else "")


def check_database(url: str) -> tuple[list[Check], bool]:
    """Parse the URL and run SELECT 1 with a short timeout; True when it answered."""
    from core.store.db import normalise_url

    try:
        parsed = make_url(normalise_url(url))
        backend = parsed.get_backend_name()
    except Exception as exc:  # noqa: BLE001  (any parse failure is the finding)
        return [Check("database_url", FAIL, f"DATABASE_URL does not parse: {exc}")], False
    if backend not in ("sqlite", "postgresql"):
        return [
            Check(
                "database_url",
                FAIL,
                f"DATABASE_URL names {backend}; Countersign runs on sqlite or postgresql.",
            )
        ], False
    shown = parsed.render_as_string(hide_password=True)
    checks = [Check("database_url", OK, f"DATABASE_URL is {shown}.")]
    if backend == "sqlite":
        path = parsed.database or ""
        if path and path != ":memory:" and not Path(path).exists():
            checks.append(
                Check(
                    "database",
                    FAIL,
                    f"There is no SQLite database file at {path} (run: python -m core db upgrade).",
                )
            )
            return checks, False
        connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_SECONDS}
    else:
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001  (any failure is the finding)
        checks.append(Check("database", FAIL, f"The database at {shown} did not answer: {_first_line(exc)}"))
        return checks, False
    finally:
        engine.dispose()
    checks.append(Check("database", OK, f"The database ({backend}) answered SELECT 1."))
    return checks, True


def check_migrations(db: Any) -> tuple[list[Check], bool]:
    from core.store.migrate import current_revision, head_revision

    current, head = current_revision(db), head_revision(db)
    if current is None:
        return [
            Check("migrations", FAIL, "The database has no schema (run: python -m core db upgrade).")
        ], False
    if current != head:
        return [
            Check(
                "migrations",
                FAIL,
                f"The database is at revision {current} but this version of "
                f"Countersign needs {head} (run: python -m core db upgrade).",
            )
        ], False
    return [Check("migrations", OK, f"The schema is at the newest revision ({head}).")], True


def check_channels(db: Any, settings: Any) -> list[Check]:
    from core.channels.registry import channel_status

    checks = []
    wanted = settings.default_channels if settings else None
    configured_people = False
    for status in channel_status(db):
        name = status["channel"]
        configured, enabled = bool(status.get("configured")), bool(status.get("enabled", True))
        if configured and name in ("email", "slack") and enabled:
            configured_people = True
        if configured:
            checks.append(
                Check(
                    f"channel {name}", OK, f"{name} is configured and {'enabled' if enabled else 'disabled'}."
                )
            )
        elif wanted and name in wanted:
            checks.append(
                Check(
                    f"channel {name}",
                    WARN,
                    f"{name} is a default channel "
                    "(COUNTERSIGN_DEFAULT_CHANNELS) but is not configured; its "
                    "notifications will fail.",
                )
            )
        else:
            checks.append(Check(f"channel {name}", OK, f"{name} is not configured (not used)."))
    if not configured_people:
        checks.append(
            Check(
                "channels",
                WARN,
                "No email or Slack channel is configured: people see requests only in the dashboard.",
            )
        )
    return checks


def check_runners(db: Any) -> list[Check]:
    from core.store.tables import RunnerHeartbeat, utcnow

    with db.read() as session:
        alive = session.scalar(
            select(func.count())
            .select_from(RunnerHeartbeat)
            .where(RunnerHeartbeat.last_seen_at >= utcnow() - RUNNER_SEEN_WITHIN)
        )
    if not alive:
        return [
            Check(
                "runners",
                WARN,
                "No runner was seen in the last minute: workflows will not "
                "advance (start: python -m core runner, or the dashboard).",
            )
        ]
    return [Check("runners", OK, f"{alive} runner(s) seen in the last minute.")]


def check_notifications(db: Any) -> list[Check]:
    from core.store.tables import Notification

    with db.read() as session:
        dead = session.scalar(
            select(func.count()).select_from(Notification).where(Notification.status == "dead")
        )
    if dead:
        return [
            Check(
                "notifications",
                WARN,
                f"{dead} notification(s) are dead (delivery gave up); "
                "check the channels and the Monitor page.",
            )
        ]
    return [Check("notifications", OK, "No dead notifications.")]


def run_checks() -> list[Check]:
    """Every check, in order; never raises for what it finds."""
    checks, settings = check_settings()
    environment = settings.environment if settings else os.environ.get("COUNTERSIGN_ENV", "development")
    checks += check_secrets(environment)
    url = database_url(settings)
    found, reachable = check_database(url)
    checks += found
    if not reachable:
        checks.append(Check("migrations", FAIL, "Not checked: the database did not answer."))
        return checks
    from core.store.db import Database

    db = Database(url, create_dirs=False)
    try:
        found, migrated = check_migrations(db)
        checks += found
        if migrated:
            for later in (
                lambda: check_channels(db, settings),
                lambda: check_runners(db),
                lambda: check_notifications(db),
            ):
                try:
                    checks += later()
                except Exception as exc:  # noqa: BLE001  (a broken check is itself a finding)
                    checks.append(Check("check", FAIL, f"A check failed to run: {_first_line(exc)}"))
    finally:
        db.dispose()
    return checks


def healthy(checks: list[Check]) -> bool:
    return all(c.status != FAIL for c in checks)


def as_dicts(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]
