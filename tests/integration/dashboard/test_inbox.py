"""Inbox: only the signed-in person's open requests, most urgent first, filters, counts."""

from __future__ import annotations

from datetime import timedelta

from streamlit.testing.v1 import AppTest

from core.approvals.engine import ApprovalEngine
from core.store.db import Database
from core.store.tables import ApprovalRequest, utcnow
from tests.integration.dashboard.conftest import new_app, no_exception, sign_in


def links(at: AppTest) -> list[str]:
    return [link.proto.label for link in at.get("page_link")]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.proto.label: m.proto.body for m in at.get("metric")}


def test_each_person_sees_only_their_requests(at: AppTest, demo_db: Database) -> None:
    sign_in(at, "devops@example.com")
    no_exception(at)
    mine = ApprovalEngine(demo_db).list_pending_approvals(requested_from="devops@example.com")
    assert len(mine) == 1
    assert links(at) == ["Production deploy approval"]
    assert links(sign_in(new_app(), "finance@example.com")) == ["High-value payment"]
    reviewers = ["Review the pricing page update"]
    assert links(sign_in(new_app(), "editor@example.com")) == reviewers


def test_counts_above_the_list(at: AppTest, demo_db: Database) -> None:
    sign_in(at, "legal@example.com")  # group "reviewers" and directly listed
    assert metrics(at)["Waiting for you"] == "1"
    assert metrics(at)["Expiring within 24 h"] == "0"


def test_most_urgent_first_and_filters(at: AppTest, demo_db: Database) -> None:
    engine = ApprovalEngine(demo_db)
    workflow_id = engine.list_pending_approvals(requested_from="devops@example.com")[0].workflow_id
    engine.request_approval(
        workflow_id,
        "Later one",
        requested_from="devops@example.com",
        timeout="5h",
        requested_by="agent@example.com",
    )
    engine.request_approval(
        None,
        "Urgent one",
        requested_from="devops@example.com",
        approval_type="form",
        timeout="30m",
        config={"channels": ["slack"]},
        requested_by="agent@example.com",
    )
    sign_in(at, "devops@example.com")
    no_exception(at)
    assert links(at) == ["Urgent one", "Later one", "Production deploy approval"]
    assert metrics(at)["Waiting for you"] == "3"
    assert metrics(at)["Expiring within 24 h"] == "2"
    assert any("left" in m.value for m in at.markdown)
    # Per type, under the counts and in the type filter (Production deploy approval is a form).
    assert "binary **1** · form **2**" in [c.value for c in at.main.caption]
    assert at.selectbox(key="inbox.type").options == ["All types", "binary (1)", "form (2)", "budget (0)"]

    at.selectbox(key="inbox.type").set_value("binary").run()
    assert links(at) == ["Later one"]
    at.selectbox(key="inbox.type").set_value(None).run()
    at.selectbox(key="inbox.channel").set_value("slack").run()
    assert links(at) == ["Urgent one"]
    at.selectbox(key="inbox.channel").set_value(None).run()
    at.selectbox(key="inbox.workflow").set_value(workflow_id).run()
    assert links(at) == ["Later one", "Production deploy approval"]


def test_an_expired_deadline_is_said_and_a_viewer_has_an_empty_inbox(at: AppTest, demo_db: Database) -> None:
    sign_in(at, "viewer@example.com")
    no_exception(at)
    assert links(at) == []
    assert any("Nothing is waiting for you" in i.value for i in at.info)
    with demo_db.session() as session:
        row = session.get(
            ApprovalRequest,
            ApprovalEngine(demo_db).list_pending_approvals(requested_from="finance@example.com")[0].id,
        )
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
    finance = sign_in(new_app(), "finance@example.com")
    assert any("expired" in m.value for m in finance.markdown)
