"""How the text an approver types becomes the arguments an edit changes
(``core.approvals.edits``: the email page, Slack and Gradio all read inputs here).

A number is read exactly (an integer however long, never through a float), a
comma is a thousands separator or refused with a sentence, a number no call
can carry (inf, nan, 1e309, 401 digits) is a problem under its field, and an
input that differs from the value now only in its line endings (a browser
submits CRLF) is no change.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.approvals.edits import (
    AMOUNT,
    answer_for,
    argument_fields,
    changed_arguments,
    problems_by_field,
    read_amount,
    read_inputs,
)
from core.approvals.presentation import RequestView

SCHEMA = {
    "type": "object",
    "properties": {
        "account": {"type": "integer"},
        "rate": {"type": "number"},
        "message": {"type": "string"},
        "to": {"type": "string"},
    },
    "required": ["to", "message"],
}
ARGUMENTS = {"account": 7, "rate": 0.5, "message": "Hello bob,\nyour order shipped.\n", "to": "bob"}


def view_of(
    arguments: dict[str, Any] | None = None, *, approval_type: str = "binary", amount: float | None = None
) -> RequestView:
    return RequestView(
        approval_id="a1",
        title="Send a note",
        description="",
        status="pending",
        approval_type=approval_type,
        requested_by="agent@example.com",
        tool="send_note",
        arguments=[],
        call_now={"tool": "send_note", "arguments": dict(arguments or ARGUMENTS), "digest": "d"},
        edit_schema=SCHEMA,
        amount=amount,
        currency="EUR",
        amount_argument="rate" if approval_type == "budget" else None,
        changes=[],
        chain="",
        threshold=1,
        approvals_so_far=0,
        votes=[],
        time_left="",
    )


def crlf(text: str) -> str:
    """A text area's value as a browser submits it."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


# -- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "name", "expected"),
    [
        ("12345678901234567891", "account", 12345678901234567891),
        ("-98765432109876543210987", "account", -98765432109876543210987),
        ("12345678901234567891", "rate", 12345678901234567891),
        ("1,234,567", "account", 1234567),
        ("1,234,567.89", "rate", 1234567.89),
        ("0.1", "rate", 0.1),
        ("1e3", "account", 1000),
        ("2.5e-3", "rate", 0.0025),
        (" 8 ", "account", 8),
    ],
)
def test_a_typed_number_is_the_number_typed(typed: str, name: str, expected: Any) -> None:
    changes, problems = read_inputs(view_of(), {name: typed})
    assert problems == {}
    assert changes == {name: expected}
    assert type(changes[name]) is type(expected)


def test_an_integer_within_float_rounding_of_the_value_now_is_a_change() -> None:
    # float(12345678901234567891) == float(12345678901234567890): they are not the same number.
    now = view_of({**ARGUMENTS, "account": 12345678901234567890})
    assert read_inputs(now, {"account": "12345678901234567891"}) == ({"account": 12345678901234567891}, {})
    assert read_inputs(now, {"account": "12345678901234567890"}) == ({}, {})
    edited = {**ARGUMENTS, "account": 12345678901234567891}  # the whole object (a JSON editor's)
    assert changed_arguments(now, edited) == {"account": 12345678901234567891}


def test_the_same_number_written_otherwise_is_no_change() -> None:
    assert read_inputs(view_of(), {"account": "7.0", "rate": ".50"}) == ({}, {})
    assert read_inputs(view_of(), {"account": "7", "rate": "0.5"}) == ({}, {})


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("9,50", "9,50 is ambiguous: write 9.50 (a point for decimals)"),
        ("1,5", "1,5 is ambiguous: write 1.5 (a point for decimals)"),
        ("1,23,456", "1,23,456 is ambiguous: write it with a point for decimals and commas only"),
        ("1,234.5,6", "1,234.5,6 is ambiguous"),
        (",5", ",5 is ambiguous"),
        ("inf", "inf is not a number a call can carry: give a finite number"),
        ("-Infinity", "-Infinity is not a number a call can carry"),
        ("nan", "nan is not a number a call can carry"),
        ("1e309", "1e309 is too large"),
        ("1e999999999", "1e999999999 is out of the range of a number a call can carry"),
        ("1e" + "9" * 30, "is out of the range of a number a call can carry"),
        ("1e-" + "9" * 10000, "is out of the range of a number a call can carry"),
        ("1e-400", "1e-400 is too close to zero for a number a call can carry"),
        ("1" * 401, "is too long: a number has at most 100 digits"),
        ("3.14159265358979323846", "has more digits than a number keeps (it would become 3.141592653589793)"),
    ],
)
@pytest.mark.parametrize("name", ["account", "rate"])
def test_a_number_that_would_become_another_or_none_is_a_problem_under_its_field(
    typed: str, problem: str, name: str
) -> None:
    changes, problems = read_inputs(view_of(), {name: typed})
    assert changes == {}
    assert list(problems) == [name] and problem in problems[name]


def test_text_that_is_no_number_is_passed_on_for_the_engine_to_name() -> None:
    assert read_inputs(view_of(), {"rate": "a lot"}) == ({"rate": "a lot"}, {})


def test_an_approved_amount_is_read_exactly_and_a_decimal_comma_is_not_a_thousands_separator() -> None:
    budget = view_of(approval_type="budget", amount=1000.0)
    assert read_amount("9.50") == 9.5
    assert read_amount("1,000") == 1000
    assert answer_for(budget, approved_amount=read_amount("1,000")) == ("approve", {})
    assert answer_for(budget, approved_amount=read_amount("999.99")) == ("modify", {AMOUNT: 999.99})
    # "9,50" is not 950: it stays text, which the engine refuses (a string is no number)...
    assert read_amount("9,50") == "9,50"
    # ... and the refusal shown under the amount says why, as do inf and overlong digits.
    refused = [
        "approved_amount: '9,50' is not of type 'number'",
        "approved_amount: 'inf' is not of type 'number'",
    ]
    assert problems_by_field(refused, budget) == {
        AMOUNT: [
            "9,50 is ambiguous: write 9.50 (a point for decimals)",
            "inf is not a number a call can carry: give a finite number",
        ]
    }
    assert read_amount("1" * 401) == "1" * 401
    assert problems_by_field(["approved_amount: 'a lot' is not of type 'number'"], budget) == {
        AMOUNT: ["'a lot' is not of type 'number'"]
    }


# -- strings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "Hello bob,\nyour order shipped.\n",
        "\n\nDear bob",
        "line one\r\nline two\r\n",
        "mixed\r\nends\nhere\rand there",
    ],
)
def test_a_text_area_sent_back_as_drawn_is_no_change(message: str) -> None:
    now = view_of({**ARGUMENTS, "message": message})
    [field] = [f for f in argument_fields(now) if f.name == "message"]
    assert field.multiline and field.text == message
    assert read_inputs(now, {"message": crlf(message), "to": "bob"}) == ({}, {})
    assert answer_for(now, changes={}) == ("approve", {})


def test_an_edited_text_area_keeps_the_line_endings_the_value_had() -> None:
    lf = view_of()
    assert read_inputs(lf, {"message": "Hello bob,\r\nyour order is late.\r\n"}) == (
        {"message": "Hello bob,\nyour order is late.\n"},
        {},
    )
    windows = view_of({**ARGUMENTS, "message": "Hello bob,\r\nyour order shipped.\r\n"})
    assert read_inputs(windows, {"message": "Hello bob,\r\nyour order is late.\r\n"}) == (
        {"message": "Hello bob,\r\nyour order is late.\r\n"},
        {},
    )
    # Typed without CR (Slack, Gradio): LF stays LF; into a CRLF value, CRLF.
    assert read_inputs(windows, {"message": "Hi\nbob"}) == ({"message": "Hi\r\nbob"}, {})
    assert read_inputs(lf, {"message": "Hi\nbob"}) == ({"message": "Hi\nbob"}, {})


def test_a_string_with_a_carriage_return_is_drawn_multi_line() -> None:
    # A one-line input drops a CR; a text area keeps it (as a line break sent as CRLF).
    now = view_of({**ARGUMENTS, "to": "bob\rsmith"})
    [field] = [f for f in argument_fields(now) if f.name == "to"]
    assert field.multiline
    assert read_inputs(now, {"to": "bob\r\nsmith"}) == ({}, {})


def test_a_string_argument_is_taken_as_typed_otherwise() -> None:
    assert read_inputs(view_of(), {"to": " bob, 1,5 "}) == ({"to": " bob, 1,5 "}, {})
