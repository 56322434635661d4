"""`python -m core serve` as a real process on a free loopback port: it answers
/healthz, serves the API with a token made by `python -m core tokens create`,
and the approver UI asks for a sign-in."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.core.conftest import accounts

ROOT = Path(__file__).resolve().parents[3]
STARTUP_LIMIT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {**os.environ, "DATABASE_URL": sqlite_url, "COUNTERSIGN_SECRETS_FILE": str(tmp_path / "none.toml")}
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            if process.poll() is not None:
                pytest.fail("the gateway exited: " + (tmp_path / "serve.log").read_text()[-2000:])
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    "the gateway did not answer within the limit: "
                    + (tmp_path / "serve.log").read_text()[-2000:]
                )
            time.sleep(0.2)
        yield base, env
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def test_serve_answers_health_api_and_sign_in(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    health = httpx.get(f"{base}/healthz", timeout=5)
    assert health.json() == {"status": "ok", "database": "sqlite"}
    accounts(env["DATABASE_URL"], "approver", "ops@example.com")  # a token acts as an account
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "tokens",
            "create",
            "--for",
            "ops@example.com",
            "--name",
            "acceptance",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    token = made.stdout.strip()
    assert "not shown again" in made.stderr and token not in made.stderr
    me = httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert (me.json()["email"], me.json()["token_name"]) == ("ops@example.com", "acceptance")
    assert "approvals:answer" in me.json()["scopes"]  # by default, the approver role's actions
    assert httpx.get(f"{base}/api/me", timeout=5).status_code == 401
    assert "countersign_approvals_pending 0.0" in httpx.get(f"{base}/metrics", timeout=5).text
    approve = httpx.get(f"{base}/approve", timeout=10)
    assert approve.status_code == 303 and approve.headers["location"].startswith("/login")
    assert httpx.get(f"{base}/openapi.json", timeout=5).json()["info"]["title"] == "Countersign"
