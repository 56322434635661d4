"""Approval page: answer through the one form and its buttons, then the outcome in their place."""

from __future__ import annotations

from datetime import timedelta

from streamlit.testing.v1 import AppTest

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.store.db import Database
from core.store.tables import ApprovalRequest, utcnow
from tests.integration.dashboard.conftest import (
    all_text,
    new_app,
    no_exception,
    pending_for,
    run_runner,
    sign_in,
    table_with,
)

ANSWER_BUTTONS = {"Approve", "Reject", "Approve with changes"}


def open_approval(email: str, approval_id: str) -> AppTest:
    at = new_app()
    at.query_params["approval"] = approval_id
    at.run()
    sign_in(at, email)
    no_exception(at)
    return at


def buttons(at: AppTest) -> set[str]:
    return {b.label for b in at.button}


def test_approve_a_form_then_the_workflow_moves_on(demo_db: Database) -> None:
    approval = pending_for(demo_db, "devops@example.com")[0]
    at = open_approval("devops@example.com", approval.id)
    assert {"Approve", "Reject", "Approve with changes"} <= buttons(at)
    assert "What approving does" in all_text(at) and "Votes so far" in all_text(at)
    assert "Approving lets the workflow go on; this request runs no tool itself." in all_text(at)
    at.text_input(key="approval.form.change_ticket").input("CHG-1234")
    at.selectbox(key="approval.form.window").set_value("tonight")
    at.text_area(key="approval.comment").input("Window agreed with on-call.")
    at.button(key="approval.approve").click().run()
    no_exception(at)
    assert [s.value for s in at.success][0] == "You approved the request."
    assert "This request was **approved** by devops@example.com" in all_text(at)
    assert not ANSWER_BUTTONS & buttons(at)

    decided = ApprovalEngine(demo_db).get(approval.id)
    assert decided.status == "approved"
    assert decided.decision_data == {"change_ticket": "CHG-1234", "window": "tonight"}
    vote = ApprovalEngine(demo_db).responses(approval.id)[0]
    assert (vote.channel, vote.comment) == ("dashboard", "Window agreed with on-call.")
    run_runner(demo_db)
    assert ops.get_workflow(demo_db, approval.workflow_id or "").status == "completed"

    at.run()  # opened again later: still the outcome, no buttons
    assert not ANSWER_BUTTONS & buttons(at)
    assert "It cannot be answered again." in all_text(at)


def test_an_invalid_answer_is_shown_beside_the_field_and_not_recorded(demo_db: Database) -> None:
    approval = pending_for(demo_db, "devops@example.com")[0]
    at = open_approval("devops@example.com", approval.id)
    at.text_input(key="approval.form.change_ticket").input("ticket 12")
    at.button(key="approval.approve").click().run()
    no_exception(at)
    assert any("Change ticket" in e.value for e in at.error), [e.value for e in at.error]
    assert ApprovalEngine(demo_db).responses(approval.id) == []
    assert "Approve" in buttons(at)


def test_reject_with_a_comment(demo_db: Database) -> None:
    approval = pending_for(demo_db, "finance@example.com")[0]
    at = open_approval("finance@example.com", approval.id)
    at.text_area(key="approval.comment").input("Customer is over their credit limit.")
    at.button(key="approval.reject").click().run()
    no_exception(at)
    assert "This request was **rejected**" in all_text(at)
    assert not ANSWER_BUTTONS & buttons(at)
    assert ApprovalEngine(demo_db).get(approval.id).status == "rejected"
    assert ApprovalEngine(demo_db).responses(approval.id)[0].comment == "Customer is over their credit limit."


def test_approve_a_budget_with_changes(demo_db: Database) -> None:
    approval = pending_for(demo_db, "finance@example.com")[0]
    at = open_approval("finance@example.com", approval.id)
    assert at.number_input(key="approval.form.approved_amount").value == 12500
    at.number_input(key="approval.form.approved_amount").set_value(10000)
    at.button(key="approval.modify").click().run()
    no_exception(at)
    decided = ApprovalEngine(demo_db).get(approval.id)
    assert decided.status == "modified"
    assert decided.decision_data == {"approved_amount": 10000}
    assert decided.released_call is not None and decided.released_call["arguments"]["amount"] == 10000
    assert "This request was **approved with changes** by finance@example.com" in all_text(at)


def test_a_gate_shows_its_facts_as_text_and_offers_no_edit(demo_db: Database) -> None:
    engine = ApprovalEngine(demo_db)
    approval = engine.request_approval(
        None,
        "Restart *the* cache",
        requested_from="manager@example.com",
        config={"allow_modify": True},
        context_data={"service": "cache", "note": "**now**"},
        requested_by="agent@example.com",
    )
    at = open_approval("manager@example.com", approval.id)
    assert [t.value for t in at.title] == [r"Restart \*the\* cache"]
    facts = table_with(at, "what", "value")
    assert dict(zip(facts["what"], facts["value"], strict=True)) == {"service": "cache", "note": "**now**"}
    assert "Approve with changes" not in buttons(at)
    assert not [w for w in at.text_input if str(w.key).startswith("approval.edit.")]
    at.button(key="approval.approve").click().run()
    assert engine.get(approval.id).status == "approved"


def test_a_plain_binary_request_offers_no_changes(demo_db: Database) -> None:
    approval = ApprovalEngine(demo_db).request_approval(
        None, "Restart the cache", requested_from="manager@example.com", requested_by="agent@example.com"
    )
    at = open_approval("manager@example.com", approval.id)
    assert {"Approve", "Reject"} <= buttons(at)
    assert "Approve with changes" not in buttons(at)
    at.button(key="approval.approve").click().run()
    assert ApprovalEngine(demo_db).get(approval.id).status == "approved"


def test_a_viewer_and_a_person_not_asked_cannot_answer(demo_db: Database) -> None:
    approval = pending_for(demo_db, "devops@example.com")[0]
    viewer = open_approval("viewer@example.com", approval.id)
    assert [t.value for t in viewer.title] == [approval.title]
    assert not ANSWER_BUTTONS & buttons(viewer)
    assert "viewer" in " ".join(i.value for i in viewer.info)
    other = open_approval("finance@example.com", approval.id)
    assert not ANSWER_BUTTONS & buttons(other)
    assert "not among this request's approvers" in " ".join(i.value for i in other.info)
    assert ApprovalEngine(demo_db).responses(approval.id) == []


def test_several_approvers_see_each_others_votes(demo_db: Database) -> None:
    approval = pending_for(demo_db, "legal@example.com")[0]
    legal = open_approval("legal@example.com", approval.id)
    legal.selectbox(key="approval.form.verdict").set_value("publish")
    legal.button(key="approval.approve").click().run()
    no_exception(legal)
    assert "You answered **approve**" in all_text(legal)
    assert not ANSWER_BUTTONS & buttons(legal)
    assert ApprovalEngine(demo_db).get(approval.id).status == "pending"

    compliance = open_approval("compliance@example.com", approval.id)
    votes = table_with(compliance, "approver", "decision")
    assert list(votes["approver"]) == ["legal@example.com"]
    assert list(votes["decision"]) == ["approve"]
    compliance.selectbox(key="approval.form.verdict").set_value("publish_with_edits")
    compliance.button(key="approval.approve").click().run()
    assert ApprovalEngine(demo_db).get(approval.id).status == "approved"
    assert "This request was **approved**" in all_text(compliance)


def test_an_expired_request_cannot_be_answered(demo_db: Database) -> None:
    approval = pending_for(demo_db, "finance@example.com")[0]
    with demo_db.session() as session:
        row = session.get(ApprovalRequest, approval.id)
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=5)
    at = open_approval("finance@example.com", approval.id)
    assert not ANSWER_BUTTONS & buttons(at)
    assert "can no longer be answered" in all_text(at)
    run_runner(demo_db)  # the runner applies on_timeout: escalate to the admin
    admin = open_approval("admin@example.com", approval.id)
    assert "Approve" in buttons(admin)


def test_a_cancelled_request_shows_its_outcome(demo_db: Database) -> None:
    approval = pending_for(demo_db, "devops@example.com")[0]
    ops.cancel_workflow(demo_db, approval.workflow_id or "", "admin@example.com")
    at = open_approval("devops@example.com", approval.id)
    assert "This request was **cancelled** by admin@example.com" in all_text(at)
    assert not ANSWER_BUTTONS & buttons(at)


def test_an_unknown_approval_is_a_plain_error(demo_db: Database) -> None:
    at = open_approval("devops@example.com", "no-such-id")
    assert [e.value for e in at.error] == ["No approval request has the id 'no-such-id'."]


def test_a_dead_notification_is_shown_and_an_admin_queues_it_again(demo_db: Database) -> None:
    from core.channels.notifications import notifications_for
    from core.store.tables import Notification

    approval = pending_for(demo_db, "devops@example.com")[0]
    dead = notifications_for(demo_db, approval.id)[0]
    with demo_db.session() as session:
        row = session.get_one(Notification, dead.id)
        row.status, row.attempts, row.last_error = "dead", 8, "SMTP refused the connection"
    at = open_approval("admin@example.com", approval.id)
    table = next(d for d in at.dataframe if "last error" in d.value.columns)
    assert "dead" in list(table.value["status"])
    assert "SMTP refused the connection" in list(table.value["last error"])
    at.button(key=f"deliveries.retry.{dead.id}").click().run()
    no_exception(at)
    assert any(s.value.startswith("Queued again: ") for s in at.success)
    again = {n.id: n for n in notifications_for(demo_db, approval.id)}[dead.id]
    assert (again.status, again.attempts) == ("pending", 0)


def test_only_admins_get_the_retry_button(demo_db: Database) -> None:
    from core.channels.notifications import notifications_for
    from core.store.tables import Notification

    approval = pending_for(demo_db, "devops@example.com")[0]
    [row_id] = [n.id for n in notifications_for(demo_db, approval.id)][:1]
    with demo_db.session() as session:
        session.get_one(Notification, row_id).status = "dead"
    at = open_approval("devops@example.com", approval.id)
    assert not [b for b in at.button if b.key == f"deliveries.retry.{row_id}"]


def test_after_voting_on_a_level_the_page_says_who_decides_next(demo_db: Database) -> None:
    approval = pending_for(demo_db, "manager@example.com")[0]  # the 75,000 USD budget
    at = open_approval("manager@example.com", approval.id)
    at.button(key="approval.approve").click().run()
    no_exception(at)
    text = all_text(at)
    assert "You approved the request." in text
    assert "not among this request's approvers" not in text
    assert "level 2 now waits for director@" in text.replace("\u2060", "")
    assert "You answered **approve** at level 1" in text
