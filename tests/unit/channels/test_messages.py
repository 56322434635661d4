"""Message building: Slack blocks within limits and inert text; email bodies; backoff; breaker."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from core.approvals.links import read_link_token
from core.channels.base import ApprovalFacts
from core.channels.dispatcher import CircuitBreaker, DeliveryPolicy
from core.channels.email import message_id, render_approval_email
from core.channels.slack import approval_blocks, escape, read_button_value


def facts(**overrides: Any) -> ApprovalFacts:
    base: dict[str, Any] = dict(
        id="ap-1",
        title="Pay <b>ACME</b> & co",
        description="<!here> please",
        approval_type="binary",
        status="pending",
        approvers=["bob@example.com"],
        requested_by="agent@example.com",
        workflow_id="wf-1",
        workflow_name="Payments",
        step_name="pay",
        level=0,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        decided_by=None,
        decided_at=None,
        proposed_action={"tool": "pay", "arguments": {"amount": 5}},
        context_data={f"k{i}": "v" * 500 for i in range(20)},
    )
    base.update(overrides)
    return ApprovalFacts(**base)


def as_dicts(approval: ApprovalFacts, **kwargs: Any) -> list[dict[str, Any]]:
    return [b.to_dict() for b in approval_blocks(approval, **kwargs)]


def test_escape_makes_mentions_and_links_inert() -> None:
    assert escape("<!channel> <@U1> <http://x|y> & a") == (
        "&lt;!channel&gt; &lt;@U1&gt; &lt;http://x|y&gt; &amp; a"
    )


def test_blocks_stay_within_block_kit_limits_for_huge_input() -> None:
    blocks = as_dicts(facts(title="T" * 1000, description="<!here> " + "D" * 10000))
    assert len(blocks) <= 50
    assert blocks[0]["type"] == "header" and len(blocks[0]["text"]["text"]) <= 150
    for block in blocks:
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
    text = str(blocks)
    assert "<!here>" not in text and "&lt;!here&gt;" in text
    header = as_dicts(facts())[0]["text"]
    assert header == {"type": "plain_text", "text": "Pay <b>ACME</b> & co", "emoji": False}  # never mrkdwn


def test_binary_has_approve_reject_with_confirm_and_dashboard_link() -> None:
    [actions] = [b for b in as_dicts(facts()) if b["type"] == "actions"]
    by_id = {e["action_id"]: e for e in actions["elements"]}
    assert set(by_id) == {"countersign_approve", "countersign_reject", "countersign_open"}
    assert by_id["countersign_reject"]["confirm"]["deny"]["text"] == "Cancel"
    # The value names the request and the level it was sent for (core.approvals.once).
    assert read_button_value(by_id["countersign_approve"]["value"]).approval_id == "ap-1"
    assert read_button_value(by_id["countersign_approve"]["value"]).level == 0


def test_form_budget_and_decided_messages_have_no_decision_buttons() -> None:
    for approval, kwargs in [
        (facts(approval_type="form"), {}),
        (facts(approval_type="budget"), {}),
        (facts(), {"outcome": "rejected", "decided_by": "bob@example.com"}),
    ]:
        [actions] = [b for b in as_dicts(approval, **kwargs) if b["type"] == "actions"]
        assert [e["action_id"] for e in actions["elements"]] == ["countersign_open"]
    decided = str(as_dicts(facts(), outcome="rejected", decided_by="<bob>"))
    assert "Rejected" in decided and "&lt;bob&gt;" in decided


def test_email_bodies_escape_html_and_carry_per_decision_tokens() -> None:
    rendered = render_approval_email(facts(), "bob@example.com", "approval.requested")
    assert "<b>ACME</b>" not in rendered["html"] and "&lt;b&gt;ACME&lt;/b&gt;" in rendered["html"]
    assert "Pay <b>ACME</b> & co" in rendered["text"]
    links = dict(re.findall(r"^(Approve|Reject): \S+token=(\S+)$", rendered["text"], flags=re.M))
    assert read_link_token(links["Approve"]).decision == "approve"
    assert read_link_token(links["Reject"]).decision == "reject"
    assert "&amp;" not in rendered["text"]


def test_message_ids_are_stable_per_notification_and_address() -> None:
    one = message_id("n-1", "bob@example.com", "Countersign <a@countersign.test>")
    assert one == message_id("n-1", "BOB@example.com", "Countersign <a@countersign.test>")
    assert one != message_id("n-1", "ann@example.com", "Countersign <a@countersign.test>")
    assert one.startswith("<n-1.") and one.endswith("@countersign.test>")


def test_backoff_grows_exponentially_within_jitter_and_is_capped() -> None:
    policy = DeliveryPolicy(backoff_initial=2.0, backoff_max=30.0)
    for attempt, base in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0)]:
        assert base <= policy.backoff(attempt) <= base + 0.5
    assert policy.backoff(10) == 30.0


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=0.05)
    breaker.failure("email")
    assert breaker.allows("email")
    breaker.failure("email")
    assert not breaker.allows("email") and breaker.allows("slack")
    assert set(breaker.open_channels()) == {"email"}
    time.sleep(0.06)
    assert breaker.allows("email")  # half-open: one more failure reopens at once
    breaker.failure("email")
    assert not breaker.allows("email")
    breaker.success("email")
    assert breaker.allows("email") and breaker.failures("email") == 0
