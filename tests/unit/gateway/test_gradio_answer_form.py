"""The Gradio approver's answer form (gateway.approver_form): which widget each
property of a schema gets, and the answer the widgets' values make."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pytest

from core.base.errors import InvalidResponse
from gateway.approver_form import answer_of, draw, form_fields

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["environment", "replicas"],
    "properties": {
        "environment": {"enum": ["staging", "production"], "default": "staging", "description": "Where to"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
        "notes": {"type": "string", "maxLength": 2000},
        "ticket": {"type": "string", "title": "Change ticket", "pattern": "^CHG-[0-9]+$"},
        "confirm": {"type": "boolean"},
        "regions": {"type": "array", "items": {"enum": ["eu", "us", 3]}},
        "window": {"$ref": "#/$defs/window"},
        "kind": {"const": "deploy"},
    },
    "$defs": {
        "window": {
            "type": "object",
            "properties": {"start": {"type": "string"}},
            "default": {"start": "22:00"},
        }
    },
}


def test_each_property_gets_its_widget() -> None:
    fields = {f.name: f for f in form_fields(SCHEMA)}
    assert [(n, f.kind) for n, f in fields.items()] == [
        ("environment", "choice"),
        ("replicas", "number"),
        ("notes", "text"),
        ("ticket", "text"),
        ("confirm", "boolean"),
        ("regions", "multiselect"),
        ("window", "json"),
        ("kind", "const"),
    ]
    assert fields["environment"].label == "Environment *" and fields["environment"].info == "Where to"
    assert fields["ticket"].label == "Change ticket"
    assert (fields["replicas"].minimum, fields["replicas"].maximum, fields["replicas"].integer) == (
        1,
        10,
        True,
    )
    assert fields["notes"].long_text and not fields["ticket"].long_text
    with gr.Blocks():
        widgets = {n: draw(f) for n, f in fields.items()}
    assert isinstance(widgets["environment"], gr.Dropdown) and widgets["environment"].value == "0"
    assert isinstance(widgets["replicas"], gr.Number) and widgets["replicas"].value == 2
    assert widgets["replicas"].info == "From 1 to 10"  # said; the engine refuses out of range
    assert isinstance(widgets["regions"], gr.Dropdown) and widgets["regions"].multiselect
    assert isinstance(widgets["confirm"], gr.Checkbox)
    assert isinstance(widgets["window"], gr.Code) and '"22:00"' in str(widgets["window"].value)
    assert widgets["kind"] is None  # a constant is sent, never asked


def test_the_widgets_values_make_the_answer() -> None:
    fields = form_fields(SCHEMA)
    values = ["1", 3.0, "", "CHG-7", True, ["0", "2"], '{"start": "23:30"}']
    assert answer_of(fields, values) == {
        "environment": "production",
        "replicas": 3,
        "ticket": "CHG-7",
        "confirm": True,
        "regions": ["eu", 3],
        "window": {"start": "23:30"},
        "kind": "deploy",
    }


def test_a_json_box_that_does_not_parse_is_refused_by_name() -> None:
    fields = form_fields(SCHEMA)
    with pytest.raises(InvalidResponse) as refused:
        answer_of(fields, ["0", 1, "", "", False, [], "{not json"])
    assert refused.value.problems[0].startswith("Window: not valid JSON")


def test_no_schema_no_fields() -> None:
    assert form_fields(None) == [] and form_fields({"type": "object"}) == []
    assert answer_of([], []) == {}
