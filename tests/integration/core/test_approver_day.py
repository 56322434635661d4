"""The approver's day in core, on SQLite and PostgreSQL: the inbox's views, search,
sort and paging; reassignment (audited, refused where it must be); bulk decisions
through the normal vote, writing nothing for a bad selection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.approvals.bulk import InvalidBulkDecision, decide_many
from core.approvals.engine import ApprovalEngine
from core.approvals.inbox_views import InboxQuery, inbox_page, newest_waiting, status_of, view_counts
from core.approvals.reassign import InvalidReassignment, reassign
from core.base.errors import ApprovalClosed, CountersignError, NotAuthorized
from core.identity.permissions import REFUSED_EVENT
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalAssignee, ApprovalRequest, Notification, WorkflowEvent, utcnow

ADMIN, ANN, BOB, VIEWER = "admin@day.test", "ann@day.test", "bob@day.test", "viewer@day.test"


@pytest.fixture
def people(db: Database) -> Database:
    add_user(db, ADMIN, role="admin")
    add_user(db, ANN, groups=["finance"])
    add_user(db, BOB, groups=["ops"])
    add_user(db, VIEWER, role="viewer")
    return db


def ask(
    db: Database,
    title: str,
    who: str | list[str],
    *,
    kind: str = "binary",
    amount: float | None = None,
    timeout: str | None = None,
    requested_by: str = "agent@day.test",
) -> str:
    config: dict[str, object] = {"channels": []}
    context = None
    if kind == "budget":
        context = {"amount": amount, "currency": "USD"}
    return (
        ApprovalEngine(db)
        .request_approval(
            None,
            title,
            approval_type=kind,
            requested_from=who,
            requested_by=requested_by,
            config=config,
            context_data=context,
            timeout=timeout,
        )
        .id
    )


def titles(db: Database, user: str, **query: object) -> list[str]:
    return [r.title for r in inbox_page(db, user, InboxQuery(**query)).rows]  # type: ignore[arg-type]


def test_views_search_sort_and_pages(people: Database) -> None:
    db = people
    ask(db, "Direct old", ANN)
    ask(db, "Group big", "finance", kind="budget", amount=900, timeout="5h")
    ask(db, "Group small", "finance", kind="budget", amount=20, timeout="1h")
    ask(db, "Bob only", BOB, requested_by="zed@day.test")
    assert titles(db, ANN) == ["Group small", "Group big", "Direct old"]
    assert titles(db, ANN, view="groups") == ["Group small", "Group big"]
    assert titles(db, ANN, sort="amount") == ["Group big", "Group small", "Direct old"]
    assert titles(db, ANN, sort="age") == ["Direct old", "Group big", "Group small"]
    assert titles(db, ANN, search="BIG") == ["Group big"]
    assert titles(db, ADMIN, view="all", search="zed@") == ["Bob only"]
    # LIKE wildcards in a search are literal characters.
    assert titles(db, ADMIN, view="all", search="%") == []
    page = inbox_page(db, ANN, InboxQuery(page_size=10, page=1))
    assert page.total == 3
    assert inbox_page(db, ADMIN, InboxQuery(view="all", page_size=10, page=2)).rows == []
    assert view_counts(db, ANN) == {"mine": 3, "groups": 2}
    assert view_counts(db, ADMIN) == {"mine": 0, "groups": 0, "all": 4}
    assert [t for _, t in newest_waiting(db, ANN)] == ["Group small", "Group big", "Direct old"]


def test_a_page_names_the_rows_its_reader_may_answer(people: Database) -> None:
    """In "All pending" an admin sees every request but may tick only their own (the
    Inbox's bulk decision); in the other views every row is the reader's."""
    db = people
    own = ask(db, "The admin's own", ADMIN)
    by_group = ask(db, "To the admins' group", "admins")
    ask(db, "Ann's", ANN)
    page = inbox_page(db, ADMIN, InboxQuery(view="all"))
    assert {r.title for r in page.rows} == {"The admin's own", "To the admins' group", "Ann's"}
    assert page.answerable == {own, by_group}
    mine = inbox_page(db, ANN)
    assert mine.answerable == {r.id for r in mine.rows} and len(mine.rows) == 1


def test_all_pending_is_for_admins_and_bad_queries_are_named(people: Database) -> None:
    with pytest.raises(NotAuthorized, match="approvals:oversee"):
        inbox_page(people, ANN, InboxQuery(view="all"))
    with people.read() as session:
        refusals = session.scalars(
            select(WorkflowEvent).where(WorkflowEvent.event_type == REFUSED_EVENT, WorkflowEvent.actor == ANN)
        ).all()
    assert [e.data["action"] for e in refusals] == ["approvals:oversee"]
    with pytest.raises(CountersignError, match="sort: must be one of deadline, age, amount"):
        inbox_page(people, ANN, InboxQuery(sort="price"))  # type: ignore[arg-type]
    with pytest.raises(CountersignError, match="page size"):
        inbox_page(people, ANN, InboxQuery(page_size=7))


def test_reassign_moves_the_request_and_is_audited(people: Database) -> None:
    db = people
    approval_id = ask(db, "Pay", ANN)
    shown = status_of(db, approval_id)
    changed = reassign(db, approval_id, ANN, ["bob@day.test"], reason="on leave")
    assert changed.approvers == [BOB]
    assert titles(db, ANN) == []
    assert titles(db, BOB) == ["Pay"]
    with db.read() as session:
        assert session.scalars(
            select(ApprovalAssignee.principal).where(ApprovalAssignee.approval_id == approval_id)
        ).all() == [BOB]
        [event] = session.scalars(
            select(WorkflowEvent).where(WorkflowEvent.event_type == "approval.reassigned")
        ).all()
        assert (event.actor, event.before, event.after, event.data["reason"]) == (
            ANN,
            {"approvers": [ANN]},
            {"approvers": [BOB]},
            "on leave",
        )
    # Status polling sees no vote or level change (reassignment is not a decision).
    assert status_of(db, approval_id) == shown
    # Bob can now decide; Ann no longer can.
    with pytest.raises(NotAuthorized):
        ApprovalEngine(db).respond_to_approval(approval_id, ANN, "approve")
    ApprovalEngine(db).respond_to_approval(approval_id, BOB, "approve")
    assert status_of(db, approval_id)[0] == "approved"
    with pytest.raises(ApprovalClosed):
        reassign(db, approval_id, ADMIN, [ANN])


def test_reassign_refusals_write_nothing(people: Database) -> None:
    db = people
    approval_id = ask(db, "Deploy", BOB)
    with pytest.raises(NotAuthorized, match="may reassign only a request they are asked"):
        reassign(db, approval_id, ANN, [ANN])
    with pytest.raises(NotAuthorized, match="approvals:reassign"):
        reassign(db, approval_id, VIEWER, [ANN])
    with pytest.raises(InvalidReassignment) as refused:
        reassign(db, approval_id, ADMIN, ["nobody@day.test", "no-such-group", VIEWER])
    assert refused.value.problems == [
        "to: nobody@day.test has no account that may answer this request",
        "to: no one who may answer this request is in the group 'no-such-group'",
        "to: viewer@day.test has no account that may answer this request",
    ]
    with pytest.raises(InvalidReassignment, match="name at least one approver"):
        reassign(db, approval_id, ADMIN, [" "])
    with db.read() as session:
        row = session.get(ApprovalRequest, approval_id)
        assert row is not None and row.approvers == [BOB]
        assert not session.scalars(
            select(WorkflowEvent).where(WorkflowEvent.event_type == "approval.reassigned")
        ).all()
    # An admin may reassign any, to a group; the group's members are notified.
    reassign(db, approval_id, ADMIN, ["finance"])
    assert titles(db, ANN, view="groups") == ["Deploy"]


def test_reassign_refuses_a_disabled_account_and_a_group_of_only_disabled_members(people: Database) -> None:
    """A disabled account may not answer, so it is no target, nor is a group whose only
    member it is: the request would be left with nobody to answer it."""
    from core.identity.account_state import disable_user, enable_user

    db = people
    gone = "gone@day.test"
    add_user(db, gone, groups=["night"])
    disable_user(db, gone, actor=ADMIN)
    approval_id = ask(db, "Deploy", BOB)
    with pytest.raises(InvalidReassignment) as refused:
        reassign(db, approval_id, ADMIN, [gone, "night"])
    assert refused.value.problems == [
        f"to: {gone} has no account that may answer this request",
        "to: no one who may answer this request is in the group 'night'",
    ]
    with db.read() as session:
        row = session.get(ApprovalRequest, approval_id)
        assert row is not None and row.approvers == [BOB]
    # Enabled again, they may be named, and answer.
    enable_user(db, gone, actor=ADMIN)
    assert reassign(db, approval_id, ADMIN, ["night"]).approvers == ["night"]
    assert ApprovalEngine(db).respond_to_approval(approval_id, gone, "approve").status == "approved"


def test_reassign_notifies_only_the_new_approvers(people: Database) -> None:
    db = people
    approval_id = (
        ApprovalEngine(db)
        .request_approval(
            None, "Notify", requested_from=ANN, requested_by="agent@day.test", config={"channels": ["email"]}
        )
        .id
    )
    reassign(db, approval_id, ADMIN, [ANN, BOB])
    with db.read() as session:
        recipients = sorted(
            session.scalars(
                select(Notification.recipient).where(Notification.approval_id == approval_id)
            ).all()
        )
    assert recipients == [ANN, BOB]


def test_bulk_decides_each_through_the_normal_vote(people: Database) -> None:
    db = people
    first, second = ask(db, "One", ANN), ask(db, "Two", "finance")
    outcomes = decide_many(db, [first, second, first], ANN, "approve", comment="batch")
    assert [(o.title, o.status, o.message) for o in outcomes] == [
        ("One", "approved", ""),
        ("Two", "approved", ""),
    ]
    for approval_id in (first, second):
        [vote] = ApprovalEngine(db).responses(approval_id)
        assert (vote.approver, vote.decision, vote.comment, vote.channel) == (
            ANN,
            "approve",
            "batch",
            "dashboard",
        )


def test_a_bad_bulk_selection_writes_nothing(people: Database) -> None:
    db = people
    binary = ask(db, "Yes or no", ANN)
    budget = ask(db, "Money", ANN, kind="budget", amount=10)
    bobs = ask(db, "Not Ann's", BOB)
    with pytest.raises(InvalidBulkDecision) as refused:
        decide_many(db, [binary, budget, bobs, "missing"], ANN, "approve")
    problems = refused.value.problems
    assert problems[0] == "'Money' is a budget request: open it to answer its form"
    assert "ann@day.test is not an approver of this request" in problems[1]
    assert "No approval request has the id 'missing'" in problems[2]
    with pytest.raises(InvalidBulkDecision, match="decision: must be approve or reject"):
        decide_many(db, [binary], ANN, "modify")
    with pytest.raises(NotAuthorized):
        decide_many(db, [binary], VIEWER, "reject")
    assert status_of(db, binary) == ("pending", 0, 0)


def test_bulk_reports_a_request_decided_meanwhile(people: Database) -> None:
    db = people
    approval_id = ask(db, "Raced", ["finance", BOB])
    with db.session() as session:
        row = session.get(ApprovalRequest, approval_id)
        assert row is not None
        row.expires_at = utcnow() + timedelta(hours=1)
    ApprovalEngine(db).respond_to_approval(approval_id, BOB, "approve")
    with pytest.raises(InvalidBulkDecision, match="already approved"):
        decide_many(db, [approval_id], ANN, "reject")
