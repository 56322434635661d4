"""Approval page: who is credited with what. A multi-level budget names the approver who
lowered the amount and the one who decided, each level's people with their own answer,
a decided request no one still "waiting", a plain Approve of a lowered amount says so,
and the Reassign form is offered only to those who may reassign the request."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.approvals.engine import ApprovalEngine
from core.store.db import Database
from tests.integration.dashboard.conftest import (
    no_exception,
    pending_for,
    shown_text,
    visible,
)
from tests.integration.dashboard.test_approval import open_approval

MARKETING = "Marketing campaign budget"


def captions(at: AppTest) -> list[str]:
    return [visible(c.value) for c in at.caption]


def successes(at: AppTest) -> list[str]:
    return [visible(s.value) for s in at.success]


def approvers_line(at: AppTest) -> str:
    [line] = [visible(m.value) for m in at.markdown if visible(m.value).startswith("**Approvers:**")]
    return line.split("  \n")[0]


def test_a_lowered_budget_credits_the_manager_and_the_outcome_the_cfo(demo_db: Database) -> None:
    [approval] = [a for a in pending_for(demo_db, "manager@example.com") if a.title == MARKETING]
    manager = open_approval("manager@example.com", approval.id)
    manager.number_input(key="approval.form.approved_amount").set_value(60000)
    manager.button(key="approval.modify").click().run()
    no_exception(manager)

    director = open_approval("director@example.com", approval.id)
    assert "Lowered from 75,000.00 USD by manager@example.com" in captions(director)
    assert approvers_line(director) == (
        "**Approvers:** level 2 of 3: manager (manager@example.com approved with changes), "
        "director waiting, cfo next"
    )
    director.button(key="approval.approve").click().run()  # nothing changed
    no_exception(director)
    assert "You approved the request." in successes(director)
    assert "Lowered from 75,000.00 USD by manager@example.com" in captions(director)

    cfo = open_approval("cfo@example.com", approval.id)
    assert "Lowered from 75,000.00 USD by manager@example.com" in captions(cfo)
    cfo.button(key="approval.approve").click().run()
    no_exception(cfo)
    assert "You approved the request." in successes(cfo)
    assert "Lowered from 75,000.00 USD by manager@example.com" in captions(cfo)
    assert approvers_line(cfo) == (
        "**Approvers:** level 3 of 3: manager (manager@example.com approved with changes), "
        "director (director@example.com approved), cfo (cfo@example.com approved)"
    )
    text = shown_text(cfo)
    assert (
        "This request was **approved with changes** at " in text
        and ": changed by manager@example.com; cfo@example.com approved last. It cannot be" in text
    ), text
    assert "modified by cfo" not in text and "cfo modified" not in text

    engine = ApprovalEngine(demo_db)
    assert engine.get(approval.id).status == "modified"
    assert [(v.approver, v.decision) for v in engine.responses(approval.id)] == [
        ("manager@example.com", "modify"),
        ("director@example.com", "approve"),
        ("cfo@example.com", "approve"),
    ]


def test_a_rejected_request_shows_each_approvers_own_answer(demo_db: Database) -> None:
    engine = ApprovalEngine(demo_db)
    approval = engine.request_approval(
        None,
        "Restart the cache",
        requested_from=["admin@example.com", "manager@example.com"],
        requested_by="agent@example.com",
    )
    admin = open_approval("admin@example.com", approval.id)
    assert approvers_line(admin) == (
        "**Approvers:** admin@example.com (waiting), manager@example.com (waiting)"
    )
    admin.button(key="approval.reject").click().run()
    no_exception(admin)
    assert "You rejected the request." in successes(admin)
    assert approvers_line(admin) == (
        "**Approvers:** admin@example.com (rejected), manager@example.com (not answered)"
    )
    assert "waiting" not in approvers_line(admin)
    assert "This request was **rejected** by admin@example.com at " in shown_text(admin)


def test_a_plain_approve_of_a_lowered_amount_says_what_was_approved(demo_db: Database) -> None:
    approval = pending_for(demo_db, "finance@example.com")[0]  # 12,500 USD, charge_payment
    at = open_approval("finance@example.com", approval.id)
    at.number_input(key="approval.form.approved_amount").set_value(10000)
    at.button(key="approval.approve").click().run()
    no_exception(at)
    assert "You approved a lower amount: 10,000.00 USD instead of 12,500.00 USD." in successes(at)
    assert "This request was **approved with changes** by finance@example.com at " in shown_text(at)
    assert "Lowered from 12,500.00 USD by finance@example.com" in captions(at)
    [vote] = ApprovalEngine(demo_db).responses(approval.id)
    assert (vote.decision, vote.data["approved_amount"]) == ("modify", 10000)


def test_reassign_is_offered_only_to_who_may_reassign_this_request(demo_db: Database) -> None:
    asked_of_admin = ApprovalEngine(demo_db).request_approval(
        None, "Rotate the keys", requested_from="admin@example.com", requested_by="agent@example.com"
    )
    finance_own = pending_for(demo_db, "finance@example.com")[0]

    def offered(email: str, approval_id: str) -> bool:
        at = open_approval(email, approval_id)
        return "Reassign this request" in [e.label for e in at.expander]

    assert not offered("finance@example.com", asked_of_admin.id)  # an approver, not asked
    assert offered("admin@example.com", asked_of_admin.id)
    assert offered("finance@example.com", finance_own.id)  # asked: may hand it on
    assert offered("admin@example.com", finance_own.id)  # an admin: any request
    assert not offered("viewer@example.com", finance_own.id)


def test_the_second_approver_sees_what_the_first_changed_before_answering(demo_db: Database) -> None:
    """Two approvals needed, finance approved a changed call: the manager's page says
    what finance changed and that only approvals of the same call add up."""
    from tests.helpers.approved_calls import pay_registry, waiting
    from tests.helpers.engine import Calls

    _, approval = waiting(
        demo_db,
        pay_registry(Calls()),
        requested_from=["finance@example.com", "manager@example.com"],
        approval_threshold=2,
    )
    ApprovalEngine(demo_db).respond_to_approval(
        approval.id, "finance@example.com", "modify", {"arguments": {"note": "to alice"}}
    )
    manager = open_approval("manager@example.com", approval.id)
    [warning] = [visible(w.value) for w in manager.warning if "Approved with changes by" in visible(w.value)]
    assert "finance@example.com: note: invoice 7 -> to alice" in warning, warning
    assert "Only approvals of the same call add up (2 needed)" in warning, warning
