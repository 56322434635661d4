"""Every approval rule, on SQLite and PostgreSQL: types, schemas, thresholds, who may
answer, one vote each, closing, expiry and escalation, the notifications outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.approvals.engine import ApprovalEngine
from core.base.errors import (
    AlreadyVoted,
    ApprovalClosed,
    ApprovalNotFound,
    DefinitionError,
    InvalidResponse,
    NotAuthorized,
)
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest, ApprovalResponse, Notification, WorkflowEvent, utcnow
from tests.helpers.engine import accounts, notifications

BOSS = "boss@example.com"


def ask(
    db: Database, approval_type: str = "binary", requested_by: str = "agent@example.com", **config: Any
) -> ApprovalRequest:
    config.setdefault("requested_from", BOSS)
    config.setdefault("channels", ["email"])
    return ApprovalEngine(db).request_approval(
        None, "Do the thing", "why", approval_type, requested_by=requested_by, config=config
    )


def votes(db: Database, approval_id: str) -> list[ApprovalResponse]:
    return ApprovalEngine(db).responses(approval_id)


def set_expiry_in_past(db: Database, approval_id: str) -> None:
    with db.session() as session:
        session.get_one(ApprovalRequest, approval_id).expires_at = utcnow() - timedelta(seconds=1)


# -- types ----------------------------------------------------------------------------


def test_binary_approve_and_reject(db: Database) -> None:
    engine = ApprovalEngine(db)
    yes, no = ask(db), ask(db)
    assert engine.respond_to_approval(yes.id, BOSS, "approve").status == "approved"
    decided = engine.respond_to_approval(no.id, BOSS, "reject", comment="too risky")
    assert (decided.status, decided.decided_by) == ("rejected", BOSS)
    assert decided.decision_data == {"comment": "too risky"}


def test_binary_modify_is_refused_unless_allowed(db: Database) -> None:
    engine = ApprovalEngine(db)
    strict = ask(db)
    with pytest.raises(InvalidResponse, match="binary approvals cannot be approved with changes"):
        engine.respond_to_approval(strict.id, BOSS, "modify", {"x": 1})
    assert votes(db, strict.id) == []  # refused whole: nothing recorded
    lenient = ask(db, allow_modify=True)
    decided = engine.respond_to_approval(lenient.id, BOSS, "modify", {"x": 1})
    assert (decided.status, decided.decision_data) == ("modified", {"x": 1})


def test_unknown_decision_is_refused(db: Database) -> None:
    with pytest.raises(InvalidResponse, match="decision: must be one of approve, reject, modify"):
        ApprovalEngine(db).respond_to_approval(ask(db).id, BOSS, "maybe")


FORM_FIELDS = [
    {"name": "contact", "type": "string", "format": "email", "required": True},
    {"name": "go_live", "type": "string", "format": "date", "required": True},
    {"name": "notes", "type": "string", "format": "textarea"},
]


def test_form_answer_checked_with_required_and_formats(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(db, "form", form_fields=FORM_FIELDS)
    assert request.response_schema["required"] == ["contact", "go_live"]
    assert request.ui_schema == {"notes": {"ui:widget": "textarea"}}
    with pytest.raises(InvalidResponse) as caught:
        engine.respond_to_approval(
            request.id, BOSS, "approve", {"contact": "nobody", "go_live": "next tuesday"}
        )
    assert caught.value.problems == [
        "contact: 'nobody' is not a 'email'",
        "go_live: 'next tuesday' is not a 'date'",
    ]
    with pytest.raises(InvalidResponse, match="'go_live' is a required property"):
        engine.respond_to_approval(request.id, BOSS, "approve", {"contact": "a@b.io"})
    assert votes(db, request.id) == []
    answer = {"contact": "ops@example.com", "go_live": "2026-12-01", "notes": "fine"}
    decided = engine.respond_to_approval(request.id, BOSS, "approve", answer)
    assert (decided.status, decided.decision_data) == ("approved", answer)


def test_form_modify_is_a_real_outcome(db: Database) -> None:
    request = ask(db, "form", form_fields=FORM_FIELDS)
    answer = {"contact": "ops@example.com", "go_live": "2026-12-02"}
    decided = ApprovalEngine(db).respond_to_approval(request.id, BOSS, "modify", answer)
    assert (decided.status, decided.decision_data) == ("modified", answer)


def test_full_json_schema(db: Database) -> None:
    schema = {
        "type": "object",
        "required": ["replicas"],
        "properties": {"replicas": {"type": "integer", "minimum": 1, "maximum": 5}},
    }
    request = ask(db, "form", schema=schema)
    engine = ApprovalEngine(db)
    with pytest.raises(InvalidResponse, match="replicas: 9 is greater than the maximum of 5"):
        engine.respond_to_approval(request.id, BOSS, "approve", {"replicas": 9})
    assert engine.respond_to_approval(request.id, BOSS, "approve", {"replicas": 3}).status == "approved"


def test_invalid_config_is_refused_before_anything_is_written(db: Database) -> None:
    with pytest.raises(DefinitionError, match=r"approval_config\.type: must be one of"):
        ApprovalEngine(db).request_approval(None, "x", approval_type="vote")
    with db.read() as session:
        assert session.scalars(select(ApprovalRequest)).all() == []


def test_budget_full_amount_approved_and_lower_amount_modified(db: Database) -> None:
    engine = ApprovalEngine(db)
    context = {"amount": 50000, "currency": "USD", "department": "marketing"}
    full = ask(db, "budget", context_data=context)
    decided = engine.respond_to_approval(full.id, BOSS, "approve")
    assert (decided.status, decided.decision_data) == ("approved", {"approved_amount": 50000.0})
    lower = ask(db, "budget", context_data=context)
    decided = engine.respond_to_approval(lower.id, BOSS, "approve", {"approved_amount": 42000})
    assert (decided.status, decided.decision_data) == ("modified", {"approved_amount": 42000})
    assert votes(db, lower.id)[0].decision == "modify"
    over = ask(db, "budget", context_data=context)
    with pytest.raises(
        InvalidResponse,
        match="approved_amount: 60,000.00 is more than the 50,000.00 USD requested; you may only lower it",
    ):
        engine.respond_to_approval(over.id, BOSS, "approve", {"approved_amount": 60000})


# -- several approvers ------------------------------------------------------------------

THREE = ["a@example.com", "b@example.com", "c@example.com"]


def test_threshold_two_of_three_one_vote_each(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(db, requested_from=THREE, approval_threshold=2)
    assert engine.respond_to_approval(request.id, "a@example.com", "approve").status == "pending"
    with pytest.raises(AlreadyVoted):
        engine.respond_to_approval(request.id, "A@Example.com", "approve")  # same person
    assert engine.respond_to_approval(request.id, "b@example.com", "approve").status == "approved"
    with pytest.raises(ApprovalClosed, match="already approved by b@example.com"):
        engine.respond_to_approval(request.id, "c@example.com", "approve")
    assert [v.approver for v in votes(db, request.id)] == ["a@example.com", "b@example.com"]


def test_a_reject_decides_by_default(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(db, requested_from=THREE, approval_threshold=2)
    engine.respond_to_approval(request.id, "a@example.com", "approve")
    assert engine.respond_to_approval(request.id, "b@example.com", "reject").status == "rejected"


def test_reject_decides_false_rejects_only_when_unreachable(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(db, requested_from=THREE, approval_threshold=2, reject_decides=False)
    assert engine.respond_to_approval(request.id, "a@example.com", "reject").status == "pending"
    decided = engine.respond_to_approval(request.id, "b@example.com", "reject")
    assert decided.status == "rejected"
    assert decided.decision_data["reason"] == "threshold unreachable"


def test_reject_decides_false_counts_group_members_as_potential_voters(db: Database) -> None:
    for email in ("r1@example.com", "r2@example.com", "r3@example.com"):
        add_user(db, email, groups=["reviewers"])
    engine = ApprovalEngine(db)
    request = ask(db, requested_from="reviewers", approval_threshold=2, reject_decides=False)
    assert engine.respond_to_approval(request.id, "r1@example.com", "reject").status == "pending"
    assert engine.respond_to_approval(request.id, "r2@example.com", "approve").status == "pending"
    assert engine.respond_to_approval(request.id, "r3@example.com", "approve").status == "approved"


@pytest.mark.parametrize("lost", ["disabled", "viewer", "service"])
def test_reject_decides_false_never_counts_a_named_person_who_may_not_answer(db: Database, lost: str) -> None:
    """A named account that may not answer now (disabled, or a role without
    approvals:answer) is no potential voter: the threshold is unreachable at once."""
    from core.identity.account_state import disable_user

    accounts(db, "approver", *THREE)
    accounts(db, "admin", "root@example.com")
    if lost == "disabled":
        disable_user(db, "c@example.com", actor="root@example.com")
    else:
        add_user(db, "c@example.com", role=lost)
    request = ask(db, requested_from=THREE, approval_threshold=2, reject_decides=False)
    decided = ApprovalEngine(db).respond_to_approval(request.id, "a@example.com", "reject")
    assert decided.status == "rejected"
    assert decided.decision_data["reason"] == "threshold unreachable"


# -- who may answer ------------------------------------------------------------------------


def test_only_listed_approvers_may_answer(db: Database) -> None:
    request = ask(db)
    with pytest.raises(NotAuthorized, match="stranger@example.com is not an approver"):
        ApprovalEngine(db).respond_to_approval(request.id, "stranger@example.com", "approve")
    assert votes(db, request.id) == []


def test_group_members_may_answer_and_see_it_in_their_inbox(db: Database) -> None:
    add_user(db, "fin1@example.com", groups=["Finance"])
    add_user(db, "dev1@example.com", groups=["devops"])
    engine = ApprovalEngine(db)
    request = ask(db, requested_from="finance")
    assert [a.id for a in engine.list_pending_approvals("fin1@example.com")] == [request.id]
    assert engine.list_pending_approvals("dev1@example.com") == []
    with pytest.raises(NotAuthorized):
        engine.respond_to_approval(request.id, "dev1@example.com", "approve")
    assert engine.respond_to_approval(request.id, "fin1@example.com", "approve").status == "approved"
    assert engine.list_pending_approvals("fin1@example.com") == []


def test_admin_role_belongs_to_admins_group(db: Database) -> None:
    add_user(db, "root@example.com", role="admin")
    add_user(db, "plain@example.com")
    engine = ApprovalEngine(db)
    request = engine.request_approval(None, "Nobody named")  # asks the admins group
    assert request.approvers == ["admins"]
    with pytest.raises(NotAuthorized):
        engine.respond_to_approval(request.id, "plain@example.com", "approve")
    assert engine.respond_to_approval(request.id, "root@example.com", "approve").status == "approved"


def test_requester_cannot_approve_own_request_unless_allowed(db: Database) -> None:
    engine = ApprovalEngine(db)
    own = ask(db, requested_by=BOSS, requested_from=[BOSS, "other@example.com"])
    with pytest.raises(NotAuthorized, match="requested this approval and cannot approve it"):
        engine.respond_to_approval(own.id, BOSS, "approve")
    # Turning down one's own request is always allowed.
    assert engine.respond_to_approval(own.id, BOSS, "reject").status == "rejected"
    allowed = ask(db, requested_by=BOSS, allow_self_approval=True)
    assert engine.respond_to_approval(allowed.id, BOSS, "approve").status == "approved"


def test_a_request_only_its_requester_could_answer_goes_to_the_admins_at_once(db: Database) -> None:
    add_user(db, "root@example.com", role="admin")
    engine = ApprovalEngine(db)
    own = ask(db, requested_by=BOSS)  # asked of BOSS alone
    assert own.approvers == ["admins"]
    with pytest.raises(NotAuthorized, match="not an approver"):
        engine.respond_to_approval(own.id, BOSS, "approve")
    with db.read() as session:
        [event] = session.scalars(
            select(WorkflowEvent).where(
                WorkflowEvent.approval_id == own.id, WorkflowEvent.event_type == "approval.escalated"
            )
        ).all()
        assert event.data["asked"] == [BOSS]
        assert "no one but the requester" in event.data["reason"]
    assert engine.respond_to_approval(own.id, "root@example.com", "approve").status == "approved"
    # A group with nobody else in it is escalated the same way.
    add_user(db, "lonely@example.com", groups=["solo"])
    grouped = ask(db, requested_by="lonely@example.com", requested_from="solo")
    assert grouped.approvers == ["admins"]


def test_a_viewer_is_never_an_approver(db: Database) -> None:
    add_user(db, "root@example.com", role="admin")
    add_user(db, "reader@example.com", role="viewer", groups=["auditors"])
    engine = ApprovalEngine(db)
    # Named alone, the viewer could never answer: the admins are asked at once.
    assert ask(db, requested_from="reader@example.com").approvers == ["admins"]
    assert ask(db, requested_from="auditors").approvers == ["admins"]
    # Named beside someone who may answer, the viewer is still refused at decision time.
    both = ask(db, requested_from=["reader@example.com", BOSS])
    with pytest.raises(NotAuthorized, match=r"reader@example.com may not approvals:answer"):
        engine.respond_to_approval(both.id, "reader@example.com", "approve")
    assert votes(db, both.id) == []
    assert engine.respond_to_approval(both.id, BOSS, "approve").status == "approved"


def test_each_response_records_who_when_channel_comment_data(db: Database) -> None:
    request = ask(db, "form", form_fields=FORM_FIELDS)
    before = utcnow()
    answer = {"contact": "ops@example.com", "go_live": "2026-12-01"}
    ApprovalEngine(db).respond_to_approval(
        request.id, "Boss@Example.com", "approve", answer, comment="ship it", channel="slack"
    )
    [vote] = votes(db, request.id)
    assert (vote.approver, vote.decision, vote.channel, vote.comment, vote.data) == (
        BOSS,
        "approve",
        "slack",
        "ship it",
        answer,
    )
    assert before <= vote.created_at <= utcnow()
    with db.read() as session:
        event = session.scalars(
            select(WorkflowEvent).where(
                WorkflowEvent.approval_id == request.id, WorkflowEvent.event_type == "approval.responded"
            )
        ).one()
    assert event.actor == BOSS
    assert event.data["channel"] == "slack" and event.data["comment"] == "ship it"


def test_unknown_approval_id(db: Database) -> None:
    with pytest.raises(ApprovalNotFound, match="nope"):
        ApprovalEngine(db).respond_to_approval("nope", BOSS, "approve")


def test_closed_request_refuses_a_second_answer(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(db)
    engine.respond_to_approval(request.id, BOSS, "reject")
    with pytest.raises(ApprovalClosed, match="already rejected"):
        engine.respond_to_approval(request.id, BOSS, "approve")
    with pytest.raises(ApprovalClosed):
        engine.expire_approval(request.id)


# -- expiry and escalation -----------------------------------------------------------------


@pytest.mark.parametrize(("rule", "outcome"), [("reject", "expired"), ("approve", "approved")])
def test_expiry_applies_on_timeout(db: Database, rule: str, outcome: str) -> None:
    engine = ApprovalEngine(db)
    request = ask(db, timeout="1h", on_timeout=rule)
    assert request.expires_at is not None
    assert timedelta(minutes=59) < request.expires_at - utcnow() <= timedelta(hours=1)
    assert engine.expire_due() == 0  # not due yet
    set_expiry_in_past(db, request.id)
    with pytest.raises(ApprovalClosed, match="expired at"):
        engine.respond_to_approval(request.id, BOSS, "approve")  # too late, even before the sweep
    assert engine.expire_due() == 1
    decided = engine.get(request.id)
    assert (decided.status, decided.decided_by) == (outcome, "system:timeout")
    assert engine.expire_due() == 0


def test_escalation_then_second_timeout_expires(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(
        db, timeout="2h", on_timeout="escalate", escalate_to="chief@example.com", channels=["email", "slack"]
    )
    set_expiry_in_past(db, request.id)
    assert engine.expire_due() == 1
    escalated = engine.get(request.id)
    assert (escalated.status, escalated.approvers, escalated.escalations) == (
        "pending",
        ["chief@example.com"],
        1,
    )
    assert escalated.expires_at is not None and escalated.expires_at > utcnow()
    assert [a.id for a in engine.list_pending_approvals("chief@example.com")] == [request.id]
    assert engine.list_pending_approvals(BOSS) == []
    with pytest.raises(NotAuthorized):
        engine.respond_to_approval(request.id, BOSS, "approve")
    assert ("approval.escalated", "slack", "chief@example.com") in notifications(db, request.id)
    set_expiry_in_past(db, request.id)
    assert engine.expire_due() == 1
    assert engine.get(request.id).status == "expired"


def test_escalated_request_can_be_answered_by_escalate_to(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(db, timeout="2h", on_timeout="escalate", escalate_to="chief@example.com")
    accounts(db, "admin", "ops@example.com")  # forcing an expiry: approvals:reassign
    assert engine.expire_approval(request.id, actor="ops@example.com").status == "pending"
    assert engine.respond_to_approval(request.id, "chief@example.com", "approve").status == "approved"


def test_votes_before_an_escalation_do_not_count_after_it(db: Database) -> None:
    # Two of boss/deputy had to approve; boss did, then the request timed out
    # to the chief. The chief's rejection must decide: boss's earlier vote
    # belongs to the round that expired.
    add_user(db, "deputy@example.com", role="approver")
    engine = ApprovalEngine(db)
    request = ask(
        db,
        requested_from=[BOSS, "deputy@example.com"],
        approval_threshold=2,
        reject_decides=False,
        timeout="2h",
        on_timeout="escalate",
        escalate_to="chief@example.com",
    )
    assert engine.respond_to_approval(request.id, BOSS, "approve").status == "pending"
    accounts(db, "admin", "ops@example.com")  # forcing an expiry: approvals:reassign
    assert engine.expire_approval(request.id, actor="ops@example.com").status == "pending"
    decided = engine.respond_to_approval(request.id, "chief@example.com", "reject", comment="no")
    assert decided.status == "rejected"
    with db.read() as session:
        votes = session.scalars(
            select(ApprovalResponse.approver)
            .where(ApprovalResponse.approval_id == request.id)
            .order_by(ApprovalResponse.id)
        ).all()
    assert votes == [BOSS, "chief@example.com"]  # the audit keeps both


def test_forced_expiry_records_event(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(db)  # no timeout: on_timeout defaults to reject
    accounts(db, "admin", "ops@example.com")  # forcing an expiry: approvals:reassign
    assert engine.expire_approval(request.id, actor="ops@example.com").status == "expired"
    with db.read() as session:
        kinds = session.scalars(
            select(WorkflowEvent.event_type)
            .where(WorkflowEvent.approval_id == request.id)
            .order_by(WorkflowEvent.id)
        ).all()
    assert kinds == ["approval.requested", "approval.expired", "approval.decided"]


def test_runner_sweep_expires_a_waiting_step(db: Database, registry: Any) -> None:
    from tests.helpers.engine import approval, run, start, status, tool

    workflow_id = start(db, [approval("gate", timeout="1h", on_timeout="reject", channels=[]), tool("after")])
    run(db, registry)
    assert status(db, workflow_id) == "waiting_approval"
    set_expiry_in_past(db, ops_approval_id(db, workflow_id))
    run(db, registry)  # run_until_idle sweeps due deadlines, then runs what they released
    assert status(db, workflow_id) == "failed"
    assert ApprovalEngine(db).get(ops_approval_id(db, workflow_id)).status == "expired"


def ops_approval_id(db: Database, workflow_id: str) -> str:
    from core.engine import workflows as ops

    [request] = ops.approvals_of(db, workflow_id)
    return request.id


# -- the notifications outbox -----------------------------------------------------------------


def test_one_notification_per_channel_and_recipient(db: Database) -> None:
    request = ask(
        db,
        requested_from=["a@example.com", "b@example.com", "a@example.com"],
        channels=["email", "slack", "email"],
    )
    assert notifications(db, request.id) == [
        ("approval.requested", "email", "a@example.com"),
        ("approval.requested", "email", "b@example.com"),
        ("approval.requested", "slack", "a@example.com"),
        ("approval.requested", "slack", "b@example.com"),
    ]


def test_default_channels_come_from_settings(db: Database) -> None:
    request = ApprovalEngine(db).request_approval(None, "x", requested_from=BOSS)
    assert notifications(db, request.id) == [("approval.requested", "email", BOSS)]


def test_auto_default_channels_are_the_configured_ones(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.base.config import get_settings

    monkeypatch.setenv("COUNTERSIGN_DEFAULT_CHANNELS", "auto")
    for name in ("COUNTERSIGN_SMTP_HOST", "SENDGRID_API_KEY", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        nothing = ApprovalEngine(db).request_approval(None, "x", requested_from=BOSS)
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        slack_only = ApprovalEngine(db).request_approval(None, "y", requested_from=BOSS)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert notifications(db, nothing.id) == []
    assert notifications(db, slack_only.id) == [("approval.requested", "slack", BOSS)]


def test_duplicate_notification_is_refused_by_the_database(db: Database) -> None:
    request = ask(db)
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(
            Notification(approval_id=request.id, kind="approval.requested", channel="email", recipient=BOSS)
        )
        session.flush()
    assert len(notifications(db, request.id)) == 1


def test_each_budget_level_notifies_its_own_approvers(db: Database) -> None:
    engine = ApprovalEngine(db)
    request = ask(
        db,
        "budget",
        requested_from=[],
        context_data={"amount": 20000},
        levels=[
            {"min_amount": 0, "approvers": ["m@example.com"]},
            {"min_amount": 10000, "approvers": ["d@example.com"]},
        ],
    )
    engine.respond_to_approval(request.id, "m@example.com", "approve")
    assert notifications(db, request.id) == [
        ("approval.requested", "email", "m@example.com"),
        ("approval.requested.level1", "email", "d@example.com"),
    ]
