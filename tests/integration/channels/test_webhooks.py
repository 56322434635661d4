"""Outbound webhooks: every delivery verified by a loopback receiver with ``standardwebhooks``."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.engine.checkpoints import rollback
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import Notification
from tests.integration.channels.conftest import WebhookReceiver, ask, dispatcher


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """Who acts in these tests has an account (core.identity.permissions)."""
    add_user(db, "agent@example.com", role="service")
    add_user(db, "ops@example.com", role="admin")  # rolls back


def webhook_rows(db: Database) -> list[Notification]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.channel == "webhook")
                .order_by(Notification.created_at)
            ).all()
        )


def test_a_receiver_failing_twice_gets_the_event_once_accepted_with_the_same_id(
    db: Database, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script = [500, 503]
    approval_id = ask(db, channels=[])
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1

    [row] = webhook_rows(db)
    assert (row.kind, row.status, row.attempts) == ("webhook.approval.requested", "sent", 3)
    assert webhook_receiver.refused == 0
    assert [v["status"] for v in webhook_receiver.verified] == [500, 503, 204]
    assert {v["id"] for v in webhook_receiver.verified} == {row.id}
    [accepted] = webhook_receiver.accepted()
    assert accepted["payload"]["type"] == "approval.requested"
    assert accepted["payload"]["data"]["approval_id"] == approval_id
    assert accepted["payload"]["data"]["title"] == "Pay invoice 42"


def test_a_wrong_secret_is_refused_by_the_receiver_and_the_row_dies(
    db: Database, webhook_receiver: WebhookReceiver, channel_env: Any
) -> None:
    channel_env.setenv("COUNTERSIGN_WEBHOOK_SECRET", "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY")
    ask(db, channels=[])
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    [row] = webhook_rows(db)
    assert (row.status, row.attempts) == ("dead", 1)
    assert "answered 401" in (row.last_error or "")
    assert webhook_receiver.refused == 1 and webhook_receiver.verified == []


def _registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.register("do")
    def do(label: str, idempotency_key: str) -> dict[str, Any]:
        return {"done": label}

    return registry


def test_requested_decided_finished_and_rolled_back_events_are_delivered_signed(
    db: Database, webhook_receiver: WebhookReceiver
) -> None:
    registry = _registry()
    workflow = ops.create_workflow(
        db,
        {
            "name": "pay",
            "steps": [
                {"name": "prepare", "type": "tool", "tool": "do", "args": {"label": "prepare"}},
                {
                    "name": "gate",
                    "type": "approval",
                    "approval_config": {"requested_from": "boss@example.com", "channels": []},
                },
                {"name": "pay", "type": "tool", "tool": "do", "args": {"label": "pay"}},
            ],
        },
        created_by="agent@example.com",
    )
    build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=30)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow.id)
    ApprovalEngine(db).respond_to_approval(approval.id, "boss@example.com", "approve")
    build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=30)
    assert ops.get_workflow(db, workflow.id).status == "completed"
    rollback(db, registry, workflow.id, checkpoint_name="before:gate", reason="undo", actor="ops@example.com")

    assert dispatcher(db).dispatch_until_idle(max_seconds=30) == 4
    accepted = webhook_receiver.accepted()
    types = [v["payload"]["type"] for v in accepted]
    assert sorted(types) == sorted(
        ["approval.requested", "approval.decided", "workflow.finished", "workflow.rolled_back"]
    )
    by_type = {v["payload"]["type"]: v["payload"]["data"] for v in accepted}
    assert by_type["approval.decided"]["status"] == "approved"
    assert by_type["approval.decided"]["decided_by"] == "boss@example.com"
    assert by_type["workflow.finished"] == {
        **by_type["workflow.finished"],
        "status": "completed",
        "workflow_id": workflow.id,
    }
    assert by_type["workflow.rolled_back"]["checkpoint"] == "before:gate"
    assert len({v["id"] for v in accepted}) == 4
    assert webhook_receiver.refused == 0
    assert {r.status for r in webhook_rows(db)} == {"sent"}


def test_no_endpoint_configured_queues_nothing(db: Database) -> None:
    ask(db, channels=[])
    assert webhook_rows(db) == []
