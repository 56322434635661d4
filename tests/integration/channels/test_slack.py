"""Slack through the real ``slack_sdk.WebClient`` against a loopback stand-in for Slack."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.channels.slack import read_button_value
from core.store.db import Database
from core.store.tables import Notification, WorkflowEvent
from tests.integration.channels.conftest import SlackAPI, ask, dispatcher

LONG_TITLE = "Transfer funds " * 20  # 300 characters: over the header limit


def rows(db: Database, approval_id: str) -> list[Notification]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.approval_id == approval_id)
                .order_by(Notification.kind, Notification.recipient)
            ).all()
        )


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}


def all_text(message: dict[str, Any]) -> str:
    import json

    return json.dumps(message["blocks"])


def test_request_posts_block_kit_within_limits_and_is_updated_after_a_dashboard_decision(
    db: Database, slack_api: SlackAPI
) -> None:
    context = {f"fact_{i}": "x" * 50 for i in range(15)}
    approval_id = ask(
        db,
        LONG_TITLE,
        channels=["slack"],
        to=["bob@example.com", "carol@example.com"],
        description="Ping <!channel> and see <https://evil.test|this> & more " + "y" * 4000,
        context_data=context,
        proposed_action={"tool": "transfer", "arguments": {"to": "<@U1>"}},
    )
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 2

    posts = slack_api.payloads("chat.postMessage")
    assert sorted(p["channel"] for p in posts) == ["U0BOB", "U0CAROL"]  # map, then lookupByEmail
    assert len(slack_api.recorded("users.lookupByEmail")) == 1
    assert slack_api.problems == []
    post = posts[0]
    header = post["blocks"][0]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    text = all_text(post)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<https://evil.test" not in text and "&lt;@U1&gt;" in text
    fields = [b for b in post["blocks"] if b.get("fields")][0]["fields"]
    assert len(fields) == 10
    actions = buttons(post)
    # A button names the request and the level it was sent for (core.approvals.once).
    assert read_button_value(actions["countersign_approve"]["value"]).approval_id == approval_id
    assert read_button_value(actions["countersign_reject"]["value"]).level == 0
    assert actions["countersign_reject"]["confirm"]["confirm"]["text"] == "Reject"
    assert "confirm" not in actions["countersign_approve"]
    assert actions["countersign_open"]["url"] == f"http://dash.test:8501/approval?approval={approval_id}"
    assert post["metadata"]["event_payload"]["approval_id"] == approval_id
    sent = {r.recipient: r for r in rows(db, approval_id)}
    assert post["metadata"]["event_payload"]["notification_id"] in {r.id for r in sent.values()}
    assert sent["bob@example.com"].external_ref["channel"] == "D-U0BOB"
    assert sent["bob@example.com"].external_ref["ts"]

    # A decision in the dashboard (the engine, as the dashboard calls it).
    ApprovalEngine(db).respond_to_approval(approval_id, "bob@example.com", "approve", channel="dashboard")
    kinds = [(r.kind, r.recipient, r.status) for r in rows(db, approval_id)]
    assert ("approval.decided", "bob@example.com", "pending") in kinds
    assert ("approval.decided", "carol@example.com", "pending") in kinds
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 2

    updates = slack_api.payloads("chat.update")
    assert sorted((u["channel"], u["ts"]) for u in updates) == sorted(
        (r.external_ref["channel"], r.external_ref["ts"]) for r in sent.values()
    )
    for update in updates:
        assert "countersign_approve" not in buttons(update)
        assert "countersign_open" in buttons(update)
        assert "Approved" in all_text(update) and "bob@example.com" in all_text(update)
    assert slack_api.problems == []
    assert {r.status for r in rows(db, approval_id)} == {"sent"}


def test_form_and_budget_requests_only_link_to_the_dashboard(db: Database, slack_api: SlackAPI) -> None:
    form_id = ask(
        db,
        "Pick a vendor",
        channels=["slack"],
        approval_type="form",
        config={"form_fields": [{"name": "vendor", "type": "string", "required": True}]},
    )
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    [post] = slack_api.payloads("chat.postMessage")
    assert set(buttons(post)) == {"countersign_open"}
    assert buttons(post)["countersign_open"]["url"].endswith(f"/approval?approval={form_id}")


def test_an_unknown_slack_user_is_dead_at_once_with_a_reason(db: Database, slack_api: SlackAPI) -> None:
    approval_id = ask(db, channels=["slack"], to="nobody@example.com")
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    [row] = rows(db, approval_id)
    assert (row.status, row.attempts) == ("dead", 1)
    assert "users_not_found" in (row.last_error or "")
    with db.read() as session:
        dead = session.scalars(
            select(WorkflowEvent).where(
                WorkflowEvent.approval_id == approval_id, WorkflowEvent.event_type == "notification.dead"
            )
        ).one()
    assert dead.data["notification_id"] == row.id


def test_a_rate_limited_post_is_retried_and_posted_once(db: Database, slack_api: SlackAPI) -> None:
    slack_api.fail_next = ["ratelimited"]
    approval_id = ask(db, channels=["slack"])
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1
    [row] = rows(db, approval_id)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(slack_api.payloads("chat.postMessage")) == 2  # refused once, then accepted
    assert len(slack_api.posted) == 1


def test_a_request_decided_before_its_message_went_out_is_not_posted_with_buttons(
    db: Database, slack_api: SlackAPI
) -> None:
    approval_id = ask(db, channels=["slack"])
    ApprovalEngine(db).respond_to_approval(approval_id, "bob@example.com", "reject", channel="api")
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    assert slack_api.payloads("chat.postMessage") == []
    assert slack_api.payloads("chat.update") == []
    assert {(r.kind, r.status) for r in rows(db, approval_id)} == {
        ("approval.requested", "sent"),
        ("approval.decided", "sent"),
    }
