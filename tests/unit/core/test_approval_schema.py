"""The JSON Schema an answer must satisfy, and the approver levels of a request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.approvals.engine import levels_for
from core.definitions.approval import ApprovalConfig
from core.definitions.approval_schema import form_fields_schema, response_schema, schema_problems
from core.definitions.workflow import parse_approval_config

SEED = Path(__file__).resolve().parents[3] / "examples" / "seed"


def form(fields: list[dict[str, object]]) -> ApprovalConfig:
    return ApprovalConfig.model_validate({"type": "form", "form_fields": fields})


def test_seed_form_fields_become_json_schema_with_required_and_ui_hints() -> None:
    config = parse_approval_config(json.loads((SEED / "form_approval_snippet.json").read_text()))
    schema, ui = form_fields_schema(config)
    assert schema["type"] == "object"
    assert schema["required"] == ["priority"]
    assert schema["properties"]["priority"] == {
        "type": "string",
        "title": "Priority Level",
        "enum": ["low", "medium", "high"],
    }
    # "textarea" is a widget, not a JSON Schema format: it moves to the UI hints.
    assert "format" not in schema["properties"]["comments"]
    assert ui == {"comments": {"ui:widget": "textarea"}}


def test_required_field_and_enum_are_enforced() -> None:
    config = parse_approval_config(json.loads((SEED / "form_approval_snippet.json").read_text()))
    schema, _ = response_schema(config, None, "USD")
    assert schema_problems(schema, {"priority": "high", "comments": "ok"}) == []
    assert schema_problems(schema, {}) == ["(answer): 'priority' is a required property"]
    assert schema_problems(schema, {"priority": "urgent"}) == [
        "priority: 'urgent' is not one of ['low', 'medium', 'high']"
    ]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("email", "ops@example.com", "not-an-email"),
        ("date", "2026-11-21", "21/11/2026"),
        ("date-time", "2026-11-21T19:15:00Z", "tomorrow"),
        ("uri", "https://example.com/x", "no scheme"),
    ],
)
def test_formats_are_checked(fmt: str, good: str, bad: str) -> None:
    schema, _ = form_fields_schema(form([{"name": "v", "format": fmt, "required": True}]))
    assert schema_problems(schema, {"v": good}) == []
    problems = schema_problems(schema, {"v": bad})
    assert len(problems) == 1 and problems[0].startswith("v: ") and fmt in problems[0]


def test_full_json_schema_is_used_as_given() -> None:
    given = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 3}},
        "required": ["n"],
        "additionalProperties": False,
    }
    config = ApprovalConfig.model_validate(
        {"type": "form", "schema": given, "ui_schema": {"n": {"ui:help": "3+"}}}
    )
    schema, ui = response_schema(config, None, "USD")
    assert schema == given and ui == {"n": {"ui:help": "3+"}}
    assert schema_problems(schema, {"n": 5}) == []
    assert schema_problems(schema, {"n": 1, "x": 0}) == [
        "(answer): Additional properties are not allowed ('x' was unexpected)",
        "n: 1 is less than the minimum of 3",
    ]


def test_budget_schema_caps_the_amount_at_the_request() -> None:
    schema, _ = response_schema(ApprovalConfig(type="budget"), 50000.0, "EUR")
    amount = schema["properties"]["approved_amount"]
    assert (amount["maximum"], amount["default"]) == (50000.0, 50000.0)
    assert "EUR" in amount["title"]
    assert schema_problems(schema, {"approved_amount": 20000}) == []
    assert schema_problems(schema, {"approved_amount": 60000}) == [
        "approved_amount: 60,000.00 is more than the 50,000.00 EUR requested; you may only lower it"
    ]
    assert schema_problems(schema, {"approved_amount": 0}) == ["approved_amount: must be more than 0"]
    assert schema_problems(schema, {"approved_amount": -5.0}) == ["approved_amount: must be more than 0"]


def test_binary_answers_are_any_object() -> None:
    schema, _ = response_schema(ApprovalConfig(), None, "USD")
    assert schema_problems(schema, {}) == []
    assert schema_problems(schema, ["x"]) == ["(answer): ['x'] is not of type 'object'"]


BUDGET_LEVELS = ApprovalConfig.model_validate(
    {
        "type": "budget",
        "levels": [
            {"name": "cfo", "min_amount": 50000, "approvers": ["CFO@example.com"]},
            {"name": "manager", "min_amount": 0, "approvers": "manager@example.com"},
            {"name": "director", "min_amount": 10000, "approvers": ["director@example.com"], "threshold": 1},
        ],
    }
)


@pytest.mark.parametrize(
    ("amount", "names"),
    [
        (5000, ["manager"]),
        (10000, ["manager", "director"]),
        (75000, ["manager", "director", "cfo"]),
        (None, ["manager", "director", "cfo"]),
    ],
)
def test_budget_levels_route_by_amount_in_order(amount: float | None, names: list[str]) -> None:
    levels = levels_for(BUDGET_LEVELS, amount)
    assert [lv.name for lv in levels] == names
    assert levels[-1].approvers == [f"{names[-1]}@example.com"]  # normalised to lower case


def test_without_levels_one_level_of_the_listed_approvers() -> None:
    config = ApprovalConfig.model_validate(
        {"required_approvers": ["A@x.io", "b@x.io"], "approval_threshold": 2}
    )
    [level] = levels_for(config, None)
    assert (level.approvers, level.threshold) == (["a@x.io", "b@x.io"], 2)


def test_a_pattern_refusal_names_the_description_or_example_not_the_regex() -> None:
    schema = {
        "type": "object",
        "properties": {
            "ticket": {
                "type": "string",
                "pattern": "^CHG-[0-9]+$",
                "description": "The change ticket: CHG- then its number.",
                "examples": ["CHG-7"],
            },
            "po": {"type": "string", "pattern": "^PO-[0-9]+$", "examples": ["PO-1"]},
            "raw": {"type": "string", "pattern": "^[a-z]+$"},
        },
    }
    assert schema_problems(schema, {"ticket": "t 42", "po": "1", "raw": "A"}) == [
        "po: '1' is not in the expected form: something like 'PO-1'",
        "raw: 'A' does not match '^[a-z]+$'",  # nothing better to say than the pattern
        "ticket: 't 42' is not in the expected form: The change ticket: CHG- then its number, "
        "for example 'CHG-7'",
    ]
