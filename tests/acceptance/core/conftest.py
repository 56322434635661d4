"""Run the real command line, ``python -m core ...``, as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CLI_TIMEOUT = 90


def cli_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERSIGN_")}
    env.update(DATABASE_URL=db_url, PYTHONUNBUFFERED="1", **extra)
    return env


def cli(db_url: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one command; with ``ok`` it must succeed, otherwise it must be refused."""
    done = subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=cli_env(db_url),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    if ok:
        assert done.returncode == 0, f"{args} failed: {done.stderr}"
    else:
        assert done.returncode != 0, f"{args} should have been refused: {done.stdout}"
        assert "Traceback" not in done.stderr + done.stdout
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return done


def accounts(db_url: str, role: str, *emails: str) -> None:
    """Give each of ``emails`` an account with ``role``: whoever a command acts as
    (``--as``) needs one for what their role allows (core.identity.permissions)."""
    from core.identity.users import add_user
    from core.store.db import Database

    db = Database(db_url)
    try:
        for email in emails:
            add_user(db, email, role=role)
    finally:
        db.dispose()


def cli_json(db_url: str, *args: str) -> Any:
    """Run a ``--json`` command: its standard output must be JSON and nothing else."""
    return json.loads(cli(db_url, *args, "--json").stdout)
