"""The default condition of "approve, and allow calls like this" (standing_rules.condition_for_call).

It is shown to people (the answer form's hint, the Policies page, the audit trail), so
its text is asserted; and it is evaluated by the gate language, so each is also checked
against the approved call (released) and calls unlike it (not released).
"""

from __future__ import annotations

from typing import Any

import pytest

from core.approvals.standing_rules import condition_for_call
from core.definitions.gates import GateError, check_expression, evaluate


def releases(condition: str, arguments: dict[str, Any]) -> bool:
    """Whether a rule of ``condition`` releases a call of ``arguments`` (a condition that
    cannot be evaluated releases nothing, as in matching_rule)."""
    try:
        return evaluate(condition, {"args": arguments, "tool": "t", "workflow": {"id": "w", "name": "n"}})
    except GateError:
        return False


@pytest.mark.parametrize(
    ("arguments", "condition"),
    [
        (
            {"amount": 100, "to": "bob@example.com"},
            "len(args) == 2 and 0 <= args.amount <= 100 and args.to == 'bob@example.com'",
        ),
        ({"amount": -5}, "len(args) == 1 and args.amount == -5"),
        ({"amount": 0}, "len(args) == 1 and args.amount == 0"),
        ({"rate": 2.5, "urgent": True}, "len(args) == 2 and 0 <= args.rate <= 2.5 and args.urgent == True"),
        ({"memo": None}, "len(args) == 1 and args.memo == None"),
        ({"lines": [{"sku": "A", "qty": 2}]}, "len(args) == 1 and args.lines == [{'sku': 'A', 'qty': 2}]"),
        ({}, "len(args) == 0"),
        # Names that cannot follow "args.": a keyword, a dict method, not an identifier, private.
        (
            {"from": "a", "items": 3, "e-mail": "x", "_id": 1},
            "len(args) == 4 and 0 <= args['_id'] <= 1 and args['e-mail'] == 'x' and args['from'] == 'a' "
            "and 0 <= args['items'] <= 3",
        ),
    ],
)
def test_the_default_condition_reads_as_the_approved_call(arguments: dict[str, Any], condition: str) -> None:
    assert condition_for_call(arguments) == condition
    assert check_expression(condition) is None
    assert releases(condition, arguments)


APPROVED = {"amount": 100, "to": "bob@example.com", "urgent": False, "tags": ["a"], "note": None}


@pytest.mark.parametrize(
    "later",
    [
        {**APPROVED, "bcc": "attacker@evil.example"},
        {**APPROVED, "amount": -5000},
        {**APPROVED, "amount": -0.01},
        {**APPROVED, "amount": 100.01},
        {**APPROVED, "amount": "50"},
        {**APPROVED, "amount": None},
        {**APPROVED, "to": "Bob@example.com"},
        {**APPROVED, "urgent": True},
        {**APPROVED, "tags": ["a", "b"]},
        {**APPROVED, "note": "pay someone else"},
        {k: v for k, v in APPROVED.items() if k != "note"},
        {k: v for k, v in APPROVED.items() if k != "note"} | {"notes": None},
    ],
)
def test_a_call_unlike_the_approved_one_is_not_released(later: dict[str, Any]) -> None:
    assert not releases(condition_for_call(APPROVED), later)


@pytest.mark.parametrize("amount", [100, 100.0, 99.99, 1, 0])
def test_a_call_like_the_approved_one_is_released(amount: float) -> None:
    assert releases(condition_for_call(APPROVED), {**APPROVED, "amount": amount})


def test_an_argument_named_like_a_dict_method_is_its_value() -> None:
    """``args.items`` would be the dict's method, never the argument: the condition uses
    ``args['items']`` so the rule releases the call it was made from."""
    approved = {"items": 3, "keys": "k", "get": True}
    assert releases(condition_for_call(approved), approved)
    assert not releases(condition_for_call(approved), {**approved, "items": 4})


def _dashboard_hint() -> str:
    from streamlit.testing.v1 import AppTest

    def app() -> None:
        from components.policies import allow_fields

        allow_fields("len(args) == 1 and 0 <= args.amount <= 100")

    at = AppTest.from_function(app, default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return str(at.text_input(key="approval.allow_when").help)


def test_every_channel_says_what_an_empty_condition_allows() -> None:
    """The dashboard's, Slack's and the REST API's words for an empty condition describe
    ``condition_for_call``: no other argument, numbers from 0 up, a negative one exactly."""
    from core.channels.slack_allow import allow_blocks
    from gateway.schemas import Answer

    condition = condition_for_call({"amount": 100, "refund": -5})
    assert condition == "len(args) == 2 and 0 <= args.amount <= 100 and args.refund == -5"
    slack = next(b["hint"]["text"] for b in allow_blocks("x", "a") if "hint" in b)
    rest = str(Answer.model_fields["allow_when"].description)
    for said in (_dashboard_hint(), slack, rest):
        assert "the same arguments and no others" in said, said
        assert "each positive number from 0 up to this call's" in said, said
        assert "a negative number or 0 exactly" in said, said
        assert "each number at most" not in said, said
