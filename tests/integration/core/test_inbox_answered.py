"""The inbox leaves out what its reader has already answered at the request's level, and
offers a tick box only where the reader may answer now; a bulk decision decides what it
can and names each request it could not decide."""

from __future__ import annotations

import pytest

from core.approvals.bulk import InvalidBulkDecision, decide_many
from core.approvals.engine import ApprovalEngine
from core.approvals.inbox import inbox, inbox_summary
from core.approvals.inbox_views import InboxQuery, inbox_page, newest_waiting, status_of, view_counts
from core.identity.users import add_user
from core.store.db import Database
from tests.integration.core.test_approver_day import ADMIN, ANN, BOB, VIEWER, ask, titles


@pytest.fixture
def people(db: Database) -> Database:
    add_user(db, ADMIN, role="admin")
    add_user(db, ANN, groups=["finance"])
    add_user(db, BOB, groups=["ops"])
    add_user(db, VIEWER, role="viewer")
    return db


def two_votes(db: Database, title: str, who: list[str], **kwargs: object) -> str:
    """A yes/no request that needs two approving votes."""
    return (
        ApprovalEngine(db)
        .request_approval(
            None,
            title,
            approval_type="binary",
            requested_from=who,
            config={"channels": [], "approval_threshold": 2},
            **kwargs,  # type: ignore[arg-type]
        )
        .id
    )


def test_a_request_answered_at_its_level_leaves_the_readers_views_and_counts(people: Database) -> None:
    """Ann voted on a two-vote request: it waits for the others, no longer for her (views,
    counts, the sidebar summary and the tab title's count, the toasts)."""
    db = people
    add_user(db, "cy@day.test", groups=["finance"])
    voted = two_votes(db, "Two votes", [ANN, BOB, "cy@day.test"])
    ask(db, "Still Ann's", ANN)
    ask(db, "Group", "finance")
    ApprovalEngine(db).respond_to_approval(voted, ANN, "approve", comment="mine")
    assert titles(db, ANN) == ["Group", "Still Ann's"]
    assert view_counts(db, ANN) == {"mine": 2, "groups": 1}
    summary = inbox_summary(db, ANN)
    assert (summary.total, summary.by_type) == (2, {"binary": 2})
    assert voted not in inbox_page(db, ANN).answerable
    assert voted not in [i for i, _ in newest_waiting(db, ANN)]
    assert [r.title for r in inbox(db, ANN)] == ["Group", "Still Ann's"]
    # Bob has not answered: it still waits for him, tickable.
    bobs = inbox_page(db, BOB)
    assert [r.title for r in bobs.rows] == ["Two votes"] and bobs.answerable == {voted}


def test_all_pending_marks_what_the_admin_answered_and_offers_no_tick_for_it(people: Database) -> None:
    db = people
    voted = two_votes(db, "Two votes", [ADMIN, ANN, BOB])
    fresh = two_votes(db, "Fresh", [ADMIN, ANN, BOB])
    ApprovalEngine(db).respond_to_approval(voted, ADMIN, "approve")
    page = inbox_page(db, ADMIN, InboxQuery(view="all"))
    assert {r.id for r in page.rows} == {voted, fresh}
    assert page.answerable == {fresh}
    assert page.answered == {voted}
    assert view_counts(db, ADMIN) == {"mine": 1, "groups": 0, "all": 2}


def test_ones_own_request_is_not_tickable_unless_it_allows_self_approval(people: Database) -> None:
    """Sent to a group the requester is in: it still waits for the group (he may reject it,
    withdrawing it), but he cannot approve it, so the bulk decision never offers it."""
    db = people
    own = ask(db, "The admin's own", "admins", requested_by=ADMIN)
    allowed_own = (
        ApprovalEngine(db)
        .request_approval(
            None,
            "Self-approvable",
            approval_type="binary",
            requested_from="admins",
            requested_by=ADMIN,
            config={"channels": [], "allow_self_approval": True},
        )
        .id
    )
    other = ask(db, "Someone else's", "admins")
    for view in ("mine", "groups", "all"):
        page = inbox_page(db, ADMIN, InboxQuery(view=view))
        assert {r.id for r in page.rows} == {own, allowed_own, other}
        assert page.answerable == {allowed_own, other}, view


def test_bulk_decides_what_it_can_and_names_what_moved_on(people: Database) -> None:
    """A request answered or decided since the inbox was drawn is reported on its own; the
    others are decided."""
    db = people
    add_user(db, "cy@day.test", groups=["finance"])
    voted = two_votes(db, "Voted already", [ANN, BOB, "cy@day.test"])
    decided = ask(db, "Decided elsewhere", [ANN, BOB])
    fine = ask(db, "Fine", ANN)
    ApprovalEngine(db).respond_to_approval(voted, ANN, "approve")
    ApprovalEngine(db).respond_to_approval(decided, BOB, "approve")
    outcomes = decide_many(db, [voted, fine, decided], ANN, "approve", comment="batch")
    assert [(o.title, o.status) for o in outcomes] == [
        ("Voted already", "refused"),
        ("Fine", "approved"),
        ("Decided elsewhere", "refused"),
    ]
    assert "has already answered" in outcomes[0].message
    assert "already approved" in outcomes[2].message
    assert [v.comment for v in ApprovalEngine(db).responses(voted)] == [""]


def test_a_bad_bulk_selection_names_each_request(people: Database) -> None:
    db = people
    own = ask(db, "My own", [ANN, BOB], requested_by=ANN)
    fine = ask(db, "Fine", ANN)
    with pytest.raises(InvalidBulkDecision) as refused:
        decide_many(db, [fine, own], ANN, "approve")
    assert refused.value.problems == [f"'My own': {ANN} requested this approval and cannot approve it."]
    assert status_of(db, fine) == ("pending", 0, 0)


def test_listings_for_a_person_leave_out_what_they_answered(people: Database) -> None:
    """``list_pending_approvals(person)``, behind REST's ``?for=``, the CLI's ``approvals
    list --for`` and Slack's ``/approvals``, agrees with the inbox."""
    db = people
    voted = two_votes(db, "Two votes", [ANN, BOB])
    ask(db, "Still Ann's", ANN)
    engine = ApprovalEngine(db)
    engine.respond_to_approval(voted, ANN, "approve")
    assert [a.title for a in engine.list_pending_approvals(ANN)] == ["Still Ann's"]
    assert voted in [a.id for a in engine.list_pending_approvals(BOB)]
    assert voted in [a.id for a in engine.list_pending_approvals()]  # still open for everyone else
