"""Browser fixtures: a real `streamlit run app.py` on a free loopback port,
against a fresh SQLite database holding the demo, driven by Playwright through
Debian's Chromium (/usr/bin/chromium; no browser is ever downloaded).

Without Chromium the browser tests are skipped with the reason, except under
CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.db import Database
from core.demo import load_demo
from core.runner import Runner

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google
# services, which this closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
STARTUP_TIMEOUT_S = 90.0
# Streamlit pages rerun on every interaction; the shared machine is slow.
UI_TIMEOUT_MS = 30_000


def require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests must run in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dashboard:
    url: str
    db_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def database(self) -> Database:
        return Database(self.db_url)


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path,
                 timeout: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"streamlit exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"streamlit did not answer {base_url}/_stcore/health within {timeout:.0f}s:\n"
        f"{log_path.read_text(errors='replace')[-4000:]}"
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def prepare_demo(db_url: str) -> None:
    """Load the demo and run it until every workflow waits for a person."""
    db = Database(db_url)
    try:
        load_demo(db)
        Runner(db, runner_id="e2e-setup").run_until_idle(max_seconds=60)
    finally:
        db.dispose()


def start_dashboard(db_url: str, workdir: Path, *, extra_env: dict[str, str] | None = None,
                    port: int | None = None) -> Dashboard:
    port = port or free_port()
    log_path = workdir / f"streamlit-{port}.log"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "PYTHONUNBUFFERED": "1",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        **(extra_env or {}),
    }
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log_path)
    except BaseException:
        stop(process)
        raise
    return Dashboard(url, db_url, process, log_path)


@pytest.fixture
def dashboard(sqlite_url: str, tmp_path: Path) -> Iterator[Dashboard]:
    """The dashboard with its in-process runner, over a fresh demo database."""
    require_chromium()
    prepare_demo(sqlite_url)
    app = start_dashboard(sqlite_url, tmp_path)
    try:
        yield app
    finally:
        stop(app.process)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    browser_page = context.new_page()
    try:
        yield browser_page
    finally:
        context.close()
