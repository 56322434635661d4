"""Choices and flags in an edit (``core.approvals.edits``; the email page and Slack's
modal draw them as selects): one the call does not set is drawn with nothing chosen and
sent back empty stays unset; one set to a value none of the choices is offers that
value first, so left alone it keeps it; an Optional[Literal] is a choice too."""

from __future__ import annotations

from typing import Any

from core.approvals.edits import argument_fields, read_inputs
from core.approvals.presentation import RequestView
from core.channels.slack_blocks import ARGUMENT_BLOCK
from core.channels.slack_modal import edit_modal

SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "urgent": {"type": "boolean", "default": False},
        "channel": {"type": "string", "enum": ["sms", "email"], "default": "email"},
        "escalate": {"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": None},
        "tier": {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}], "default": None},
    },
    "required": ["order_id"],
}


def view_of(arguments: dict[str, Any]) -> RequestView:
    return RequestView(
        approval_id="a1",
        title="Notify a customer",
        description="",
        status="pending",
        approval_type="binary",
        requested_by="agent@example.com",
        tool="notify_customer",
        arguments=[],
        call_now={"tool": "notify_customer", "arguments": dict(arguments), "digest": "d"},
        edit_schema=SCHEMA,
        amount=None,
        currency="EUR",
        amount_argument=None,
        changes=[],
        chain="",
        threshold=1,
        approvals_so_far=0,
        votes=[],
        time_left="",
    )


def fields_of(view: RequestView) -> dict[str, Any]:
    return {f.name: f for f in argument_fields(view)}


def test_a_choice_or_flag_not_set_is_drawn_unset_and_sent_back_empty_stays_unset() -> None:
    view = view_of({"order_id": "ORD-1", "escalate": None})
    fields = fields_of(view)
    for name in ("urgent", "channel", "escalate", "tier"):
        assert fields[name].text is None, name
    assert fields["tier"].kind == "choice"
    assert fields["tier"].options == [("a", '"a"'), ("b", '"b"')]
    assert read_inputs(view, {"urgent": "", "channel": "", "escalate": "", "tier": ""}) == ({}, {})
    # Picked on purpose, a value is a change (and only that one).
    assert read_inputs(view, {"urgent": "", "channel": '"sms"', "tier": '"b"'}) == (
        {"channel": "sms", "tier": "b"},
        {},
    )


def test_a_value_none_of_the_choices_is_offered_first_and_kept_unless_changed() -> None:
    view = view_of({"order_id": "ORD-1", "channel": "fax", "urgent": "yes"})
    fields = fields_of(view)
    assert fields["channel"].options[0] == ("fax (as now)", '"fax"')
    assert fields["urgent"].options[0] == ("yes (as now)", "yes")
    drawn = {"channel": fields["channel"].text, "urgent": fields["urgent"].text}
    assert read_inputs(view, drawn) == ({}, {})
    assert read_inputs(view, {"channel": '"email"', "urgent": "false"}) == (
        {"channel": "email", "urgent": False},
        {},
    )


def test_slacks_modal_leaves_an_unset_choice_unchosen_and_preselects_a_value_off_the_list() -> None:
    blocks = edit_modal("a1", view_of({"order_id": "ORD-1", "channel": "fax"}), level=0)["blocks"]
    inputs = {b["block_id"]: b for b in blocks if b.get("type") == "input"}
    urgent, channel = inputs[ARGUMENT_BLOCK + "urgent"], inputs[ARGUMENT_BLOCK + "channel"]
    assert urgent["optional"] and "initial_option" not in urgent["element"]
    assert channel["element"]["initial_option"]["value"] == '"fax"'
