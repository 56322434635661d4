"""The Policies page in a real browser: a standing rule created by answering
"Approve, and allow calls like this", used by a later call that runs without
asking, another made on the page, and the first revoked, after which calls are
asked about again. Saves docs/screenshots/policies.png."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

import tests.e2e.recording_tools  # noqa: F401  (registers record_payment in this process too)
from core.approvals import standing_rules
from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.runtime import build_runner
from core.store.db import Database
from tests.e2e.conftest import FAILED, require_chromium
from tests.e2e.recording_tools import RECEIVED_ENV
from tests.e2e.server import Dashboard, prepare_demo, sign_in, start_dashboard, stop, wait_for_app

pytestmark = pytest.mark.browser

ADMIN = "admin@example.com"
FINANCE = "finance@example.com"
TITLE = "Pay a small invoice"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "policies.png"
PAY = {
    "name": "small invoices",
    "steps": [
        {
            "name": "pay",
            "type": "tool",
            "tool": "record_payment",
            "requires_approval": True,
            "args": {"amount": "${input.amount}", "currency": "USD", "note": "invoice"},
            "approval_config": {"title": TITLE, "requested_from": ADMIN, "channels": []},
        }
    ],
}


@pytest.fixture
def received(tmp_path: Path) -> Path:
    return tmp_path / "received.jsonl"


@pytest.fixture
def app(
    sqlite_url: str, tmp_path: Path, received: Path, request: pytest.FixtureRequest
) -> Iterator[Dashboard]:
    require_chromium()
    prepare_demo(sqlite_url)
    dashboard = start_dashboard(
        sqlite_url,
        tmp_path,
        extra_env={"COUNTERSIGN_TOOL_MODULES": "tests.e2e.recording_tools", RECEIVED_ENV: str(received)},
    )
    try:
        yield dashboard
    finally:
        stop(dashboard.process)
        if request.node.stash.get(FAILED, False):
            print(f"--- streamlit log ({dashboard.log_path}) ---\n{dashboard.log()}")


def start_payment(db: Database, amount: float) -> str:
    return ops.create_workflow(db, PAY, input_data={"amount": amount}, created_by=FINANCE).id


def wait_status(db: Database, workflow_id: str, status: str, app: Dashboard) -> None:
    """Run what is runnable here too (the dashboard's runner starts with its first page),
    then wait for ``status``."""
    build_runner(db).run_until_idle(max_seconds=30)
    deadline = time.monotonic() + 30
    while ops.get_workflow(db, workflow_id).status != status and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ops.get_workflow(db, workflow_id).status == status, app.log()


def amounts(path: Path) -> list[float]:
    import json

    return [json.loads(line)["amount"] for line in path.read_text().splitlines()] if path.exists() else []


def test_create_use_and_revoke_a_standing_rule(
    app: Dashboard, page: Any, received: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RECEIVED_ENV, str(received))  # this process's runner runs the tool too
    db = Database(app.db_url)
    try:
        first = start_payment(db, 120)
        wait_status(db, first, "waiting_approval", app)
        [request] = ApprovalEngine(db).list_pending_approvals(workflow_id=first)

        # Create: approve, and allow calls like this for 7 days.
        page.goto(f"{app.url}/?approval={request.id}")
        wait_for_app(page)
        sign_in(page, ADMIN)
        expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
        page.get_by_text("Approve, and allow calls like this for the days below").click()
        page.get_by_role("textbox", name="Calls like this: a condition on the arguments").fill(
            "args.amount <= 150"
        )
        page.get_by_role("button", name="Approve", exact=True).click()
        wait_for_app(page)
        expect(page.get_by_text("Calls like this are allowed for 7 days")).to_be_visible()
        wait_status(db, first, "completed", app)
        [rule] = standing_rules.list_rules(db, ADMIN)
        assert (rule["tool"], rule["condition"], rule["workflow_name"]) == (
            "record_payment",
            "args.amount <= 150",
            "small invoices",
        )

        # Use: a later call within the rule runs at once; one above it is asked about.
        second, third = start_payment(db, 90), start_payment(db, 400)
        wait_status(db, second, "completed", app)
        wait_status(db, third, "waiting_approval", app)
        assert amounts(received) == [120, 90]
        released = ops.approvals_of(db, second)[0]
        assert released.decided_by == f"system:rule:{rule['id']}"
        page.goto(f"{app.url}/?approval={released.id}")
        wait_for_app(page)
        expect(page.get_by_text(f"Released without asking by standing rule {rule['id']}")).to_be_visible()

        # The page lists it, used once; another rule is made with the form.
        page.goto(f"{app.url}/policies")
        wait_for_app(page)
        expect(page.get_by_role("heading", name="Standing rules")).to_be_visible()
        page.get_by_role("textbox", name="Tool", exact=True).fill("record_refund")
        page.get_by_role("textbox", name="Condition", exact=True).fill("args.amount <= 20")
        page.get_by_role("button", name="Create rule").click()
        wait_for_app(page)
        expect(
            page.get_by_text(re.compile(r"Rule \d+ created: record_refund when args\.amount"))
        ).to_be_visible()
        table = page.locator('[data-testid="stDataFrame"]').first
        expect(table).to_be_visible()
        page.get_by_role("heading", name="Policies", exact=True).scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOT))

        # Revoke the first: calls like it are asked about again.
        box = page.get_by_role("combobox", name="Rule")
        choice = page.get_by_role("option", name=re.compile(rf"^{rule['id']}: record_payment"))
        for _ in range(3):
            box.click()
            try:
                expect(choice).to_be_visible(timeout=3_000)
                break
            except AssertionError:
                continue
        choice.click()
        page.get_by_role("button", name="Revoke").click()
        wait_for_app(page)
        expect(page.get_by_text(f"Rule {rule['id']} revoked")).to_be_visible()
        assert [r["tool"] for r in standing_rules.list_rules(db, ADMIN)] == ["record_refund"]
        fourth = start_payment(db, 90)
        wait_status(db, fourth, "waiting_approval", app)
        assert amounts(received) == [120, 90]
    finally:
        db.dispose()
