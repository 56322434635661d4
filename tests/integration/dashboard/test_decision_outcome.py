"""After a decision the dashboard says where the workflow goes next, and an ordinary
rejection reads as a person's decision, not a failure (AppTest, the real pages, SQLite
and PostgreSQL): the Approval page names the next step, the next level or the stop,
with a link to the Workflow page; a rejection is a warning there, on the Workflow page
(who said no, and why) and on the Monitor ("Workflow stopped: request rejected"),
while a real failure stays an error; the Workflows list links to the request a
waiting workflow waits for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from core.approvals.engine import ApprovalEngine
from core.demo.scenarios import load_demo
from core.engine import workflows as ops
from core.ops.alerts import WORKFLOW_FAILED, evaluate_alerts
from core.store.db import Database
from core.store.tables import ApprovalRequest
from tests.integration.dashboard.conftest import (
    _app_over,
    new_app,
    no_exception,
    open_page,
    pending_for,
    run_runner,
    shown_text,
    sign_in,
    visible,
)

DEVOPS = "devops@example.com"


@pytest.fixture
def demo(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The demo on either database, run up to its first approvals, under the dashboard."""
    load_demo(db)
    run_runner(db)
    with _app_over(monkeypatch, db_url):
        yield db


def waiting(db: Database, email: str, step: str) -> ApprovalRequest:
    [approval] = [a for a in pending_for(db, email) if a.step_name == step]
    return approval


def approval_page(email: str, approval_id: str) -> AppTest:
    at = new_app()
    at.query_params["approval"] = approval_id
    at.run()
    sign_in(at, email)
    no_exception(at)
    return at


def page(email: str, name: str, **params: str) -> AppTest:
    at = sign_in(new_app(), email)
    open_page(at, name, **params)
    no_exception(at)
    return at


def said(elements: object) -> list[str]:
    return [visible(str(e.value)) for e in elements]  # type: ignore[attr-defined]


def links(at: AppTest) -> list[tuple[str, str]]:
    """(label, query string) of each page link."""
    return [(link.proto.label, link.proto.query_string) for link in at.get("page_link")]


def test_after_an_approval_the_page_says_which_step_runs_next(demo: Database) -> None:
    approval = waiting(demo, DEVOPS, "deployment_approval")
    at = approval_page(DEVOPS, approval.id)
    at.text_input(key="approval.form.change_ticket").input("CHG-77")
    at.selectbox(key="approval.form.window").set_value("now")
    at.button(key="approval.approve").click().run()
    no_exception(at)
    assert said(at.success)[0] == "You approved the request."
    assert "The workflow resumes at step 'deploy'." in said(at.info)
    assert ("Open the workflow", f"workflow={approval.workflow_id}") in links(at)


def test_after_a_level_passes_the_page_says_who_is_asked_next(demo: Database) -> None:
    [approval] = [a for a in pending_for(demo, "manager@example.com") if a.step_name == "budget_request"]
    at = approval_page("manager@example.com", approval.id)
    at.button(key="approval.approve").click().run()
    no_exception(at)
    assert "The workflow waits for level 2 of 3: director@example.com." in said(at.info)
    assert ("Open the workflow", f"workflow={approval.workflow_id}") in links(at)


def test_a_rejection_on_the_approval_page_is_a_warning_that_says_the_workflow_stopped(
    demo: Database,
) -> None:
    approval = waiting(demo, DEVOPS, "deployment_approval")
    at = approval_page(DEVOPS, approval.id)
    at.text_area(key="approval.comment").input("Not during the sale")
    at.button(key="approval.reject").click().run()
    no_exception(at)
    warnings = said(at.warning)
    assert any(w.startswith("This request was **rejected** by devops@example.com") for w in warnings), (
        warnings
    )
    assert "The workflow has stopped at step 'deployment_approval': the request was rejected." in warnings
    assert not at.error, said(at.error)
    assert ("Open the workflow", f"workflow={approval.workflow_id}") in links(at)
    run_runner(demo)
    # Opened again later, the request still says where its workflow went.
    again = approval_page(DEVOPS, approval.id)
    assert "The workflow has stopped at step 'deployment_approval': the request was rejected." in said(
        again.warning
    )
    assert not again.error, said(again.error)


def test_a_workflow_a_rejection_stopped_names_who_said_no_on_its_page_and_the_monitor(
    demo: Database,
) -> None:
    approval = waiting(demo, DEVOPS, "deployment_approval")
    ApprovalEngine(demo).respond_to_approval(approval.id, DEVOPS, "reject", comment="Not during the sale")
    run_runner(demo)
    workflow_id = approval.workflow_id or ""
    assert ops.get_workflow(demo, workflow_id).status == "failed"  # the engine's status, as it was
    workflow = page("viewer@example.com", "workflow", workflow=workflow_id)
    assert said(workflow.warning) == [
        "Stopped: the request at step 'deployment_approval' was rejected by devops@example.com: "
        "Not during the sale"
    ]
    assert not workflow.error, said(workflow.error)
    assert ("Open the rejected request", f"approval={approval.id}") in links(workflow)

    [alert] = [a for a in evaluate_alerts(demo).raised if a.rule == WORKFLOW_FAILED]
    assert alert.severity == "warning"
    monitor = page("admin@example.com", "monitor")
    text = shown_text(monitor)
    assert "**Workflow stopped: request rejected**" in text and "Workflow failed" not in text


def test_a_real_failure_is_still_an_error(demo: Database) -> None:
    workflow = ops.create_workflow(
        demo,
        {
            "name": "Release api",
            "steps": [
                {"name": "deploy", "type": "tool", "tool": "deploy_release", "args": {"service": "api"}}
            ],
        },
    )
    run_runner(demo)
    assert ops.get_workflow(demo, workflow.id).status == "failed"
    at = page("viewer@example.com", "workflow", workflow=workflow.id)
    assert len(at.error) == 1 and "deploy" in at.error[0].value
    assert not at.warning
    evaluate_alerts(demo)
    monitor = page("admin@example.com", "monitor")
    assert "**Workflow failed**" in shown_text(monitor)


def test_the_workflows_list_links_to_the_request_a_workflow_waits_for(demo: Database) -> None:
    at = page("viewer@example.com", "workflows")
    table = at.dataframe(key="workflows.table").value
    open_requests = ApprovalEngine(demo).list_pending_approvals()
    expected = {a.workflow_id: f"approval?approval={a.id}" for a in open_requests}
    shown = {row["id"]: row["request"] for _, row in table.iterrows() if row["id"] in expected}
    assert shown == expected


def _binary(title: str, **step: object) -> dict[str, object]:
    config = {"title": title, "type": "binary", "requested_from": "finance@example.com", "channels": []}
    return {"type": "approval", "approval_config": config, **step}


@pytest.mark.parametrize(
    ("steps", "decision", "said_next"),
    [
        ([{"name": "ask", **_binary("Go?")}], "approve", "The workflow finishes (step 'ask' is its last)."),
        (
            [{"name": "ask", **_binary("Go?", on_reject="skip")}, {"name": "ship", **_binary("Ship?")}],
            "reject",
            "The workflow skips step 'ask' (the request was rejected) and resumes at step 'ship'.",
        ),
        (
            [
                {"name": "draft", **_binary("Draft?")},
                {"name": "ask", **_binary("Go?", on_reject="goto:draft")},
            ],
            "reject",
            "The workflow goes to step 'draft' (the request was rejected).",
        ),
    ],
)
def test_what_the_page_says_follows_the_steps_on_reject(
    demo: Database, steps: list[dict[str, object]], decision: str, said_next: str
) -> None:
    workflow = ops.create_workflow(demo, {"name": "Paths", "steps": steps}, created_by="admin@example.com")
    run_runner(demo)
    engine = ApprovalEngine(demo)
    if steps[0]["name"] == "draft":  # get to the step that asks "Go?"
        [first] = engine.list_pending_approvals(workflow_id=workflow.id)
        engine.respond_to_approval(first.id, "finance@example.com", "approve")
        run_runner(demo)
    [asked] = [a for a in engine.list_pending_approvals(workflow_id=workflow.id) if a.step_name == "ask"]
    at = approval_page("finance@example.com", asked.id)
    at.button(key=f"approval.{decision}").click().run()
    no_exception(at)
    assert said_next in said(at.info), said(at.info)
    assert not at.error
