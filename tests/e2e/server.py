"""Run the real dashboard and drive it: shared by the browser tests and
bench/screenshots.py.

`streamlit run app.py` is started as a subprocess on a free loopback port
against the given database; Chromium is Debian's (/usr/bin/chromium), never a
downloaded one.
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from core.demo.scenarios import DEMO_PASSWORD, load_demo
from core.runtime import build_runner
from core.store.db import Database

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
# Bounded waits for the UI; the shared CI machine can be slow.
UI_TIMEOUT_MS = 30_000
APP_SELECTOR = '[data-testid="stApp"]'


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


def wait_healthy(
    base_url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = STARTUP_TIMEOUT_S
) -> None:
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
    """SIGTERM, then SIGKILL if it does not exit in time."""
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
        build_runner(db).run_until_idle(max_seconds=60)
    finally:
        db.dispose()


def start_dashboard(
    db_url: str, workdir: Path, *, extra_env: dict[str, str] | None = None, port: int | None = None
) -> Dashboard:
    port = port or free_port()
    log_path = workdir / f"streamlit-{port}.log"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log_path)
    except BaseException:
        stop(process)
        raise
    return Dashboard(url, db_url, process, log_path)


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


# -- driving Streamlit --------------------------------------------------------------------


def require_chromium() -> None:
    """Skip without Debian's Chromium, except under CI (``CI`` set), where it fails."""
    import pytest

    if Path(CHROMIUM).exists():
        return
    reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests must run in CI: {reason}")
    pytest.skip(reason)


@contextmanager
def open_chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright, closed on the way out (skipped if absent)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def fresh_page(chromium: Any) -> Iterator[Any]:
    """A page in a browser context of its own (another person, another session), closed after."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def wait_for_app(page: Any, timeout_ms: int = UI_TIMEOUT_MS) -> None:
    """Wait until the app is connected and its script has finished running."""
    page.locator(f'{APP_SELECTOR}[data-test-connection-state="CONNECTED"]').wait_for(timeout=timeout_ms)
    page.locator(f'{APP_SELECTOR}[data-test-script-state="notRunning"]').wait_for(timeout=timeout_ms)
    # Widgets whose code is still loading show a skeleton; clicking one misses.
    expect(page.locator('[data-testid="stSkeleton"]')).to_have_count(0, timeout=timeout_ms)


def sign_in(page: Any, email: str, password: str = DEMO_PASSWORD) -> None:
    """Fill the local sign-in form shown to a signed-out visitor."""
    form = page.locator('[data-testid="stForm"]').filter(
        has=page.get_by_role("textbox", name="Password", exact=True)
    )
    expect(form).to_be_visible()
    form.get_by_role("textbox", name="Email", exact=True).fill(email)
    form.get_by_role("textbox", name="Password", exact=True).fill(password)
    form.get_by_role("button", name="Sign in", exact=True).click()
    expect(form).to_have_count(0)
    wait_for_app(page)
