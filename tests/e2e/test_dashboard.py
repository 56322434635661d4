"""The dashboard in a real browser: `streamlit run app.py` over a fresh demo
database, driven through Debian's Chromium.

Every wait is bounded (``expect`` polls up to 30s); nothing sleeps for a fixed
time. The demo workflows have been run up to their first approval before the
browser opens, and the app's own in-process runner moves them on afterwards.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core.store.tables import ApprovalRequest, StepRun, Workflow, WorkflowCheckpoint
from tests.e2e.server import Dashboard, sign_in, wait_for_app

pytestmark = pytest.mark.browser

DEPLOY = "Production deployment"


def _deploy_rows(app: Dashboard) -> tuple[Workflow, ApprovalRequest]:
    db = app.database()
    try:
        with db.read() as session:
            workflow = session.scalars(select(Workflow).where(Workflow.name == DEPLOY)).one()
            approval = session.scalars(
                select(ApprovalRequest).where(ApprovalRequest.workflow_id == workflow.id)
            ).one()
            return workflow, approval
    finally:
        db.dispose()


def _workflow_status(app: Dashboard, workflow_id: str) -> Workflow:
    db = app.database()
    try:
        with db.read() as session:
            row = session.get(Workflow, workflow_id)
            assert row is not None
            return row
    finally:
        db.dispose()


def _wait_for_status(app: Dashboard, workflow_id: str, status: str, timeout: float = 30.0) -> Workflow:
    """Poll the database (bounded) until the app's runner has moved the workflow."""
    deadline = time.monotonic() + timeout
    row = _workflow_status(app, workflow_id)
    while row.status != status and time.monotonic() < deadline:
        time.sleep(0.2)
        row = _workflow_status(app, workflow_id)
    assert row.status == status, f"workflow is {row.status}, not {status}:\n{app.log()}"
    return row


def _choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label`` as a keyboard user
    does: open it, type the option's name, press Enter. (Clicking the option could miss
    for as long as the list kept redrawing under it on a loaded machine: the option
    was detached at each try for 30 s in one CI run.)"""
    box = page.get_by_role("combobox", name=label)
    choice = page.get_by_role("option", name=option, exact=True)
    # The first click after typing elsewhere may only move focus; retry a few times.
    for _ in range(3):
        box.click()
        try:
            expect(choice).to_be_visible(timeout=3_000)
            break
        except AssertionError:
            continue
    page.keyboard.type(option)
    page.keyboard.press("Enter")
    expect(choice).to_have_count(0)  # the list closed on the choice
    expect(box).to_have_value(option)


@pytest.mark.each_database
def test_deep_link_sign_in_fill_form_approve_moves_workflow_on(dashboard: Dashboard, page: Any) -> None:
    workflow, approval = _deploy_rows(dashboard)
    assert workflow.status == "waiting_approval"

    page.goto(f"{dashboard.url}/?approval={approval.id}")
    wait_for_app(page)
    sign_in(page, "devops@example.com")

    # Signed in, the deep link still holds: the same approval is on screen.
    expect(page.get_by_text("Production deploy approval").first).to_be_visible()
    assert f"approval={approval.id}" in page.url

    ticket = page.get_by_role("textbox", name=re.compile("^Change ticket"))
    for field in (
        ticket,
        page.get_by_role("combobox", name=re.compile("^Deployment window")),
        page.get_by_label("Rollback plan"),
    ):
        expect(field).to_be_visible()
    ticket.fill("CHG-1234")
    _choose(page, "Deployment window", "tonight")
    page.get_by_label("Rollback plan").fill("Redeploy 2.13.4 with the release tool.")
    page.get_by_role("button", name="Approve", exact=True).click()
    wait_for_app(page)

    # After a decision the outcome replaces the buttons.
    expect(page.get_by_text("This request was approved by devops@example.com")).to_be_visible()
    expect(page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)

    # The app's runner deploys and smoke-tests: the workflow finishes.
    finished = _wait_for_status(dashboard, workflow.id, "completed")
    answer = finished.context["approvals"]["deployment_approval"]
    assert answer["status"] == "approved" and answer["decided_by"] == "devops@example.com"
    assert answer["data"]["change_ticket"] == "CHG-1234" and answer["data"]["window"] == "tonight"

    # ... and the Workflow page says so, with its timeline drawn.
    # (In-app navigation, as a person would click it.)
    page.get_by_role("link", name=f"Workflow: {DEPLOY}").click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name=DEPLOY)).to_be_visible()
    expect(page.get_by_text(workflow.id).first).to_be_visible()
    expect(page.get_by_text("completed").first).to_be_visible()
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    expect(chart).to_be_visible()
    expect(chart.locator(".barlayer .point").first).to_be_attached()
    assert chart.locator(".barlayer .point").count() >= 4  # one bar per step run


@pytest.mark.each_database
def test_rollback_with_reason_and_confirmation_restores_checkpoint(dashboard: Dashboard, page: Any) -> None:
    workflow, approval = _deploy_rows(dashboard)

    page.goto(f"{dashboard.url}/?workflow={workflow.id}")
    wait_for_app(page)
    sign_in(page, "admin@example.com")
    expect(page.get_by_text(DEPLOY).first).to_be_visible()

    page.get_by_role("tab", name="Checkpoints").click()
    expect(page.get_by_text("before:deployment_approval").first).to_be_visible()
    page.get_by_role("button", name="Rollback", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason").fill("Change window moved")
    dialog.get_by_text("Yes, roll back and compensate the later steps").click()
    dialog.get_by_role("button", name="Confirm rollback").click()
    expect(dialog).to_have_count(0)
    wait_for_app(page)

    # Only what is shown: the hidden tabs (Events, Timeline) are in the page too, and
    # an approval cancelled "rolled back to ..." may be drawn there first (the text
    # match is case-insensitive), which made ``.first`` a hidden element.
    expect(page.get_by_text("Rolled back to").filter(visible=True).first).to_be_visible()
    # The result names the approval it cancelled.
    expect(page.get_by_text(approval.id).filter(visible=True).first).to_be_visible()
    restored = _workflow_status(dashboard, workflow.id)
    assert restored.status == "paused"
    db = dashboard.database()
    try:
        with db.read() as session:
            checkpoint = session.scalars(
                select(WorkflowCheckpoint)
                .where(WorkflowCheckpoint.workflow_id == workflow.id)
                .order_by(WorkflowCheckpoint.id.desc())
            ).first()
            cancelled = session.get(ApprovalRequest, approval.id)
            runs = session.scalars(select(StepRun).where(StepRun.workflow_id == workflow.id)).all()
    finally:
        db.dispose()
    assert checkpoint is not None and restored.current_step == checkpoint.step_index
    assert cancelled is not None and cancelled.status == "cancelled"
    assert {r.status for r in runs if r.step_name == "deployment_approval"} == {"rolled_back"}


def test_sign_in_survives_a_reload_and_signing_out_ends_it(dashboard: Dashboard, page: Any) -> None:
    password = page.get_by_role("textbox", name="Password", exact=True)
    page.goto(f"{dashboard.url}/")
    wait_for_app(page)
    sign_in(page, "viewer@example.com")
    # An email is shown as text: an invisible word joiner after "@" keeps it from linking.
    signed_in_as = re.compile("viewer@\u2060?example\\.com")
    expect(page.get_by_text(signed_in_as).first).to_be_visible()

    # A full page load starts a new Streamlit session: the signed cookie signs it in.
    page.reload()
    wait_for_app(page)
    expect(page.get_by_text(signed_in_as).first).to_be_visible()
    expect(password).to_have_count(0)

    page.get_by_role("button", name="Sign out", exact=True).click()
    wait_for_app(page)
    expect(password).to_be_visible()
    page.reload()
    wait_for_app(page)
    expect(password).to_be_visible()
