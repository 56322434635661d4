"""A guarded budget call approved lower in a real browser: the tool, run by the
dashboard's own runner in the `streamlit run app.py` process, receives the
lower amount, whether the approver typed it at human speed or it was filled
in at once, on the embedded SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

import tests.e2e.recording_tools  # noqa: F401  (registers record_payment in this process too)
from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.runtime import build_runner
from core.store.db import Database
from tests.e2e.conftest import FAILED, require_chromium
from tests.e2e.recording_tools import RECEIVED_ENV
from tests.e2e.server import Dashboard, prepare_demo, sign_in, start_dashboard, stop, wait_for_app

pytestmark = pytest.mark.browser

FINANCE = "finance@example.com"
TITLE = "Pay the supplier"
PAY = {
    "name": "pay a supplier",
    "steps": [
        {
            "name": "pay",
            "type": "tool",
            "tool": "record_payment",
            "requires_approval": True,
            "args": {"amount": "${input.amount}", "currency": "USD", "note": "${input.note}"},
            "approval_config": {"title": TITLE, "type": "budget", "requested_from": FINANCE},
        }
    ],
}


@pytest.fixture
def received(tmp_path: Path) -> Path:
    return tmp_path / "received.jsonl"


@pytest.fixture
def recording_dashboard(
    db_url: str, tmp_path: Path, received: Path, request: pytest.FixtureRequest
) -> Iterator[Dashboard]:
    """The dashboard, its runner able to run record_payment (COUNTERSIGN_TOOL_MODULES),
    on the embedded SQLite file and on PostgreSQL (``db_url``'s two cases)."""
    require_chromium()
    prepare_demo(db_url)
    app = start_dashboard(
        db_url,
        tmp_path,
        extra_env={"COUNTERSIGN_TOOL_MODULES": "tests.e2e.recording_tools", RECEIVED_ENV: str(received)},
    )
    try:
        yield app
    finally:
        stop(app.process)
        if request.node.stash.get(FAILED, False):
            print(f"--- streamlit log ({app.log_path}) ---\n{app.log()}")


def waiting_payment(db_url: str) -> tuple[str, str]:
    """A workflow whose guarded record_payment call of 12,500 USD waits for finance."""
    db = Database(db_url)
    try:
        workflow = ops.create_workflow(
            db, PAY, input_data={"amount": 12500, "note": "invoice 7"}, created_by="admin@example.com"
        )
        build_runner(db).run_until_idle(max_seconds=60)
        [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow.id)
        return workflow.id, approval.id
    finally:
        db.dispose()


def read_received(path: Path, app: Dashboard, timeout: float = 30.0) -> list[dict[str, Any]]:
    """What the tool received, once the dashboard's runner has run it (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (path.exists() and path.read_text().strip()):
        time.sleep(0.2)
    assert path.exists(), f"the tool never ran:\n{app.log()}"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(("speed", "amount"), [("human", "9000"), ("machine", "8500")])
def test_a_budget_approved_lower_runs_the_tool_with_the_lower_amount(
    recording_dashboard: Dashboard, page: Any, received: Path, speed: str, amount: str
) -> None:
    app = recording_dashboard
    workflow_id, approval_id = waiting_payment(app.db_url)
    page.goto(f"{app.url}/?approval={approval_id}")
    wait_for_app(page)
    sign_in(page, FINANCE)
    expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    expect(page.get_by_text("12,500.00 USD (twelve thousand five hundred US dollars)")).to_be_visible()

    field = page.get_by_role("spinbutton", name="Approved amount (USD)")
    expect(field).to_have_value("12500.00")
    if speed == "human":
        field.click()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(amount, delay=120)
    else:
        field.fill(amount)
    page.get_by_role("button", name="Approve", exact=True).click()
    wait_for_app(page)
    expect(
        page.get_by_text(f"You approved a lower amount: {float(amount):,.2f} USD instead of 12,500.00 USD.")
    ).to_be_visible()
    expect(page.get_by_text("This request was approved with changes by finance@example.com")).to_be_visible()

    assert read_received(received, app) == [{"amount": float(amount), "currency": "USD", "note": "invoice 7"}]
    db = Database(app.db_url)
    try:
        deadline = time.monotonic() + 30
        while ops.get_workflow(db, workflow_id).status != "completed" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ops.get_workflow(db, workflow_id).status == "completed"
    finally:
        db.dispose()
