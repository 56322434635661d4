"""What a request's view credits to whom, on SQLite and PostgreSQL (the ``db`` fixture):
a budget's lowering to the votes that lowered it, each level's people with their own
answer, the outcome to the last vote, and the confirmation of a plain Approve that
lowered the amount. And who may reassign a request: the rule the refusal uses."""

from __future__ import annotations

import pytest

from core.approvals.engine import ApprovalEngine
from core.approvals.presentation import RequestView, answer_confirmation, request_view
from core.approvals.reassign import can_reassign, reassign
from core.base.errors import NotAuthorized
from core.identity.users import add_user
from core.store.db import Database

LEVELS = [
    {"name": "manager", "min_amount": 0, "approvers": ["manager@example.com"]},
    {"name": "director", "min_amount": 10000, "approvers": ["director@example.com"]},
    {"name": "cfo", "min_amount": 50000, "approvers": ["cfo@example.com"]},
]


def budget(db: Database, amount: float = 75000) -> str:
    return (
        ApprovalEngine(db)
        .request_approval(
            None,
            "Marketing campaign budget",
            approval_type="budget",
            requested_by="agent@example.com",
            config={"levels": LEVELS},
            context_data={"amount": amount, "currency": "USD"},
        )
        .id
    )


def view_of(db: Database, approval_id: str) -> RequestView:
    engine = ApprovalEngine(db)
    return request_view(engine.get(approval_id), engine.responses(approval_id))


def test_the_lowering_is_credited_to_who_lowered_it_and_the_outcome_to_the_last_vote(db: Database) -> None:
    engine = ApprovalEngine(db)
    approval_id = budget(db)
    engine.respond_to_approval(approval_id, "manager@example.com", "approve", {"approved_amount": 60000})
    engine.respond_to_approval(approval_id, "director@example.com", "approve", {})
    view = view_of(db, approval_id)
    assert view.amount_note == "lowered from 75,000.00 USD by manager@example.com"
    assert view.chain == (
        "level 3 of 3: manager (manager@example.com approved with changes), "
        "director (director@example.com approved), cfo waiting"
    )
    assert view.outcome is None
    assert answer_confirmation(view, "manager@example.com", 1) == (
        "You approved a lower amount: 60,000.00 USD instead of 75,000.00 USD."
    )
    assert answer_confirmation(view, "director@example.com", 2) == "You approved the request."

    engine.respond_to_approval(approval_id, "cfo@example.com", "approve", {})
    view = view_of(db, approval_id)
    assert view.status == "modified"
    assert view.amount_note == "lowered from 75,000.00 USD by manager@example.com"
    assert view.chain == (
        "level 3 of 3: manager (manager@example.com approved with changes), "
        "director (director@example.com approved), cfo (cfo@example.com approved)"
    )
    assert view.outcome is not None and view.outcome.word == "approved with changes"
    assert view.outcome.detail.endswith(": changed by manager@example.com; cfo@example.com approved last")
    assert [(v["approver"], v["decision"]) for v in view.votes] == [
        ("manager@example.com", "modify"),
        ("director@example.com", "approve"),
        ("cfo@example.com", "approve"),
    ]


def test_each_cut_is_credited_with_its_own_amount(db: Database) -> None:
    engine = ApprovalEngine(db)
    approval_id = budget(db)
    engine.respond_to_approval(approval_id, "manager@example.com", "approve", {"approved_amount": 60000})
    engine.respond_to_approval(approval_id, "director@example.com", "modify", {"approved_amount": 55000})
    view = view_of(db, approval_id)
    assert view.amount_note == (
        "lowered from 75,000.00 USD by manager@example.com (to 60,000.00 USD), "
        "director@example.com (to 55,000.00 USD)"
    )
    assert answer_confirmation(view, "director@example.com", 2) == (
        "You approved a lower amount: 55,000.00 USD instead of 60,000.00 USD."
    )


def test_a_rejected_request_names_who_rejected_and_who_did_not_answer(db: Database) -> None:
    engine = ApprovalEngine(db)
    approval_id = engine.request_approval(
        None,
        "Restart the cache",
        requested_from=["admin@example.com", "manager@example.com"],
        requested_by="agent@example.com",
    ).id
    assert view_of(db, approval_id).chain == "admin@example.com (waiting), manager@example.com (waiting)"
    engine.respond_to_approval(approval_id, "admin@example.com", "reject", comment="not now")
    view = view_of(db, approval_id)
    assert view.chain == "admin@example.com (rejected), manager@example.com (not answered)"
    assert view.outcome is not None
    assert (view.outcome.word, view.outcome.detail.split(" at ")[0]) == ("rejected", " by admin@example.com")
    assert answer_confirmation(view, "admin@example.com", 1) == "You rejected the request."


def test_only_who_may_reassign_this_request_is_offered_it(db: Database) -> None:
    add_user(db, "admin@example.com", role="admin")
    add_user(db, "finance@example.com", role="approver")
    add_user(db, "manager@example.com", role="approver")
    add_user(db, "viewer@example.com", role="viewer")
    engine = ApprovalEngine(db)
    approval_id = engine.request_approval(
        None, "Rotate the keys", requested_from="manager@example.com", requested_by="agent@example.com"
    ).id
    approval = engine.get(approval_id)
    assert can_reassign(db, approval, "admin@example.com")
    assert can_reassign(db, approval, "manager@example.com")
    assert not can_reassign(db, approval, "viewer@example.com")
    assert not can_reassign(db, approval, "finance@example.com")
    with pytest.raises(NotAuthorized, match="may reassign only a request they are asked to answer"):
        reassign(db, approval_id, "finance@example.com", ["admin@example.com"])
    reassign(db, approval_id, "manager@example.com", ["finance@example.com"], reason="on leave")
    approval = engine.get(approval_id)
    assert not can_reassign(db, approval, "manager@example.com")  # no longer asked
    assert can_reassign(db, approval, "finance@example.com")
    engine.respond_to_approval(approval_id, "finance@example.com", "approve")
    assert not can_reassign(db, engine.get(approval_id), "admin@example.com")  # decided
