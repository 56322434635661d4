"""schema_form through Streamlit's AppTest: what it draws, what it returns, what it refuses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Element, Node, Widget
from streamlit.testing.v1.errors import AppTestError

from core.definitions.approval import ApprovalConfig
from core.definitions.approval_schema import budget_schema, form_fields_schema, response_schema

D7 = "http://json-schema.org/draft-07/schema#"
D2020 = "https://json-schema.org/draft/2020-12/schema"


def form_app(schema, ui, value, label):  # type: ignore[no-untyped-def]  # its source runs as the app
    import streamlit as st

    from components.schema_form import schema_form

    st.session_state["last"] = schema_form(schema, key="f", ui_schema=ui, value=value, submit_label=label)


def flatten(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Block):
        for child in node.children.values():
            yield from flatten(child)


class Form:
    """An AppTest around ``schema_form(..., key="f")``."""

    def __init__(self, schema: Any, ui: Any = None, value: Any = None, label: str = "Submit") -> None:
        self.at = AppTest.from_function(form_app, args=(schema, ui, value, label), default_timeout=30)
        self.at.run()
        self.check()

    def check(self) -> None:
        assert not self.at.exception, [e.value for e in self.at.exception]

    def submit(self) -> Any:
        """Click submit, sending what the test staged in the form; what schema_form returned."""
        self.at.button(key="f.submit").click().run()
        self.check()
        return self.at.session_state["last"]

    def click(self, key: str) -> None:
        self.at.button(key=key).click().run()
        self.check()
        assert self.at.session_state["last"] is None

    @property
    def errors(self) -> list[str]:
        return [e.value for e in self.at.error]

    def widget_keys(self) -> list[str]:
        return [n.key for n in flatten(self.at.main) if isinstance(n, Widget) and n.key]

    def errors_under(self, key: str, *, markdown: bool = False) -> list[str]:
        """The errors drawn between widget ``key`` and the next widget, as a reader sees
        them (Markdown's escapes undone), or with ``markdown`` as drawn."""
        nodes = [n for n in flatten(self.at.main) if isinstance(n, Element)]
        start = next(i for i, n in enumerate(nodes) if isinstance(n, Widget) and n.key == key)
        found = []
        for node in nodes[start + 1 :]:
            if isinstance(node, Widget):
                break
            if node.type == "error":
                found.append(node.value if markdown else _unescaped(node.value))
        return found


def _unescaped(markdown: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


# --- the seed's form, budget and binary approvals (as core builds them) -----------------

SEED_FORM = {
    "approval_type": "form",
    "context_data": {
        "form_fields": [
            {
                "name": "priority",
                "type": "string",
                "title": "Priority Level",
                "enum": ["low", "medium", "high"],
                "required": True,
            },
            {"name": "comments", "type": "string", "title": "Additional Comments", "format": "textarea"},
        ]
    },
}


def test_seed_form_draws_required_priority_select_and_comments_textarea() -> None:
    schema, ui = form_fields_schema(ApprovalConfig.model_validate(SEED_FORM))
    form = Form(schema, ui, label="Approve")
    priority = form.at.selectbox(key="f.priority")
    assert priority.label == "Priority Level *"
    assert priority.options == ["low", "medium", "high"]
    assert priority.value is None  # a required choice is the approver's to make
    comments = form.at.text_area(key="f.comments")
    assert comments.label == "Additional Comments"
    assert form.at.button(key="f.submit").label == "Approve"
    assert form.widget_keys() == ["f.priority", "f.comments", "f.submit"]


def test_seed_form_refuses_missing_priority_then_returns_answer_without_empty_comment() -> None:
    schema, ui = form_fields_schema(ApprovalConfig.model_validate(SEED_FORM))
    form = Form(schema, ui)
    assert form.at.session_state["last"] is None
    assert form.submit() is None
    assert form.errors_under("f.priority") == ["Priority Level: this field is required"]
    form.at.selectbox(key="f.priority").select("high")
    assert form.submit() == {"priority": "high"}
    assert form.errors == []
    form.at.text_area(key="f.comments").input("ship it")
    assert form.submit() == {"priority": "high", "comments": "ship it"}


def test_seed_enum_names_label_the_options() -> None:
    config = ApprovalConfig.model_validate(
        {
            "approval_type": "form",
            "form_fields": [{"name": "tier", "enum": ["p1", "p2"], "enumNames": ["Urgent", "Routine"]}],
        }
    )
    schema, ui = form_fields_schema(config)
    form = Form(schema, ui)
    tier = form.at.selectbox(key="f.tier")
    assert tier.options == ["Urgent", "Routine"]
    tier.select("p2")
    assert form.submit() == {"tier": "p2"}


def test_budget_schema_prefills_the_requested_amount_within_bounds() -> None:
    form = Form(budget_schema(50000, "USD"), {}, label="Approve")
    amount = form.at.number_input(key="f.approved_amount")
    assert amount.label == "Approved amount (USD)"
    assert amount.help == (
        "Approve the requested amount or a lower one. Must be more than 0 and at most 50000."
    )
    assert amount.value == 50000.0
    # No widget bounds: an amount over the maximum is refused in words, never snapped back.
    assert (amount.min, amount.max) == (None, None)
    assert form.submit() == {"approved_amount": 50000.0}
    form.at.number_input(key="f.approved_amount").set_value(60000.0)
    assert form.submit() is None
    assert form.errors_under("f.approved_amount") == [
        "Approved amount (USD): 60,000.00 is more than the 50,000.00 USD requested; you may only lower it"
    ]
    form.at.number_input(key="f.approved_amount").set_value(0.0)
    assert form.submit() is None
    assert form.errors_under("f.approved_amount") == ["Approved amount (USD): must be more than 0"]
    form.at.number_input(key="f.approved_amount").set_value(-5.0)
    assert form.submit() is None
    assert form.errors_under("f.approved_amount") == ["Approved amount (USD): must be more than 0"]
    form.at.number_input(key="f.approved_amount").set_value(1e20)
    assert form.submit() is None
    assert form.errors_under("f.approved_amount") == [
        "Approved amount (USD): 100,000,000,000,000,000,000.00 is more than the 50,000.00 USD "
        "requested; you may only lower it"
    ]
    form.at.number_input(key="f.approved_amount").set_value(1200.5)
    assert form.submit() == {"approved_amount": 1200.5}


def test_budget_without_amount_has_no_upper_bound() -> None:
    form = Form(budget_schema(None, "EUR"))
    amount = form.at.number_input(key="f.approved_amount")
    assert amount.value is None
    assert form.submit() == {}  # optional and empty: left out


def test_binary_approval_is_just_the_button() -> None:
    schema, ui = response_schema(ApprovalConfig.model_validate({"type": "binary"}), None, "USD")
    form = Form(schema, ui, label="Approve")
    assert form.widget_keys() == ["f.submit"]
    assert form.submit() == {}


# --- strings --------------------------------------------------------------------------

STRINGS = {
    "$schema": D2020,
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "Name", "description": "Who asks", "maxLength": 20},
        "notes": {"type": "string", "title": "Notes"},
        "email": {"type": "string", "format": "email", "title": "Email"},
        "site": {"type": "string", "format": "uri", "title": "Site"},
        "secret": {"type": "string", "title": "Secret"},
        "day": {"type": "string", "format": "date", "title": "Day"},
        "at": {"type": "string", "format": "date-time", "title": "At"},
        "clock": {"type": "string", "format": "time", "title": "Clock"},
    },
    "required": ["name"],
}
STRINGS_UI = {
    "notes": {"ui:widget": "textarea", "ui:options": {"rows": 6}},
    "secret": {"ui:widget": "password"},
}


def test_string_widgets_by_format_and_hint() -> None:
    form = Form(STRINGS, STRINGS_UI)
    name = form.at.text_input(key="f.name")
    assert (name.label, name.help, name.max_chars) == ("Name *", "Who asks", 20)
    assert form.at.text_area(key="f.notes").label == "Notes"
    assert form.at.text_input(key="f.email").placeholder == "name@example.com"
    assert form.at.text_input(key="f.secret").proto.type == form.at.text_input(key="f.secret").proto.PASSWORD
    assert form.at.text_input(key="f.name").proto.type == form.at.text_input(key="f.name").proto.DEFAULT
    assert form.at.date_input(key="f.day").value is None
    assert form.at.datetime_input(key="f.at").value is None
    assert form.at.time_input(key="f.clock").value is None


def test_strings_come_back_as_iso_text_and_empty_optionals_are_omitted() -> None:
    form = Form(STRINGS, STRINGS_UI)
    form.at.text_input(key="f.name").input("Ada")
    assert form.submit() == {"name": "Ada"}  # no "" for email, uri, ...: they would fail
    form.at.text_input(key="f.email").input("ada@example.com")
    form.at.text_input(key="f.site").input("https://example.com/x")
    form.at.text_input(key="f.secret").input("s3cret")
    form.at.text_area(key="f.notes").input("line one\nline two")
    form.at.date_input(key="f.day").set_value(date(2026, 3, 1))
    form.at.datetime_input(key="f.at").set_value(datetime(2026, 3, 1, 9, 30))
    form.at.time_input(key="f.clock").set_value(time(17, 45))
    assert form.submit() == {
        "name": "Ada",
        "notes": "line one\nline two",
        "email": "ada@example.com",
        "site": "https://example.com/x",
        "secret": "s3cret",
        "day": "2026-03-01",
        "at": "2026-03-01T09:30:00+00:00",
        "clock": "17:45:00",
    }


def test_bad_email_and_uri_are_shown_under_their_fields() -> None:
    form = Form(STRINGS, STRINGS_UI)
    form.at.text_input(key="f.name").input("Ada")
    form.at.text_input(key="f.email").input("not-an-email")
    form.at.text_input(key="f.site").input("not a uri")
    assert form.submit() is None
    assert form.errors_under("f.email") == ["Email: 'not-an-email' is not a valid email"]
    assert form.errors_under("f.site") == ["Site: 'not a uri' is not a valid uri"]
    assert form.errors_under("f.name") == []


def test_defaults_and_given_value_prefill_dates_and_text() -> None:
    schema = {
        "type": "object",
        "properties": {
            "day": {"type": "string", "format": "date", "default": "2026-01-02"},
            "at": {"type": "string", "format": "date-time", "default": "2026-01-02T08:00:00Z"},
            "clock": {"type": "string", "format": "time", "default": "07:15:00Z"},
            "who": {"type": "string", "default": "ops"},
        },
    }
    form = Form(schema, value={"who": "finance"})
    assert form.at.date_input(key="f.day").value == date(2026, 1, 2)
    assert form.at.datetime_input(key="f.at").value == datetime(2026, 1, 2, 8, 0)
    assert form.at.time_input(key="f.clock").value == time(7, 15)
    assert form.at.text_input(key="f.who").value == "finance"
    assert form.submit() == {
        "day": "2026-01-02",
        "at": "2026-01-02T08:00:00+00:00",
        "clock": "07:15:00",
        "who": "finance",
    }


# --- numbers and booleans ---------------------------------------------------------------

NUMBERS = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 1, "maximum": 10, "multipleOf": 1, "default": 2},
        "batch": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100, "multipleOf": 5},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.05},
    },
    "required": ["count"],
}


def test_number_bounds_are_said_and_steps_reach_the_widgets() -> None:
    form = Form(NUMBERS)
    count = form.at.number_input(key="f.count")
    assert (count.label, count.min, count.max, count.step, count.value) == ("Count *", None, None, 1, 2)
    assert count.help.endswith("Must be at least 1 and at most 10.")
    batch = form.at.number_input(key="f.batch")
    assert (batch.step, batch.value) == (5, None)
    ratio = form.at.number_input(key="f.ratio")
    assert (ratio.step, ratio.help) == (0.05, "Must be at least 0 and at most 1.")


def test_numbers_return_typed_and_out_of_step_values_are_refused() -> None:
    form = Form(NUMBERS)
    form.at.number_input(key="f.batch").set_value(15)
    form.at.number_input(key="f.ratio").set_value(0.25)
    got = form.submit()
    assert got == {"count": 2, "batch": 15, "ratio": 0.25}
    assert isinstance(got["count"], int) and isinstance(got["batch"], int)
    form.at.number_input(key="f.batch").set_value(7)
    assert form.submit() is None
    assert form.errors_under("f.batch") == ["Batch: 7 is not a multiple of 5"]


def test_number_out_of_bounds_is_refused_with_the_field_named() -> None:
    schema = {
        "$schema": D7,
        "type": "object",
        "properties": {"share": {"type": "number", "title": "Share", "exclusiveMaximum": 5}},
    }
    form = Form(schema)
    share = form.at.number_input(key="f.share")
    assert share.help == "Must be less than 5."
    share.set_value(5.0)
    assert form.submit() is None
    assert form.errors_under("f.share") == ["Share: must be less than 5"]
    form.at.number_input(key="f.share").set_value(4.5)
    assert form.submit() == {"share": 4.5}


def test_draft_04_boolean_exclusive_minimum_is_said() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"x": {"type": "integer", "minimum": 0, "exclusiveMinimum": True}},
    }
    form = Form(schema)
    assert form.at.number_input(key="f.x").help == "Must be more than 0."
    form.at.number_input(key="f.x").set_value(0)
    assert form.submit() is None
    form.at.number_input(key="f.x").set_value(3)
    assert form.submit() == {"x": 3}


def test_booleans_checkbox_toggle_and_radio() -> None:
    schema = {
        "type": "object",
        "properties": {
            "agree": {"type": "boolean", "title": "I agree"},
            "notify": {"type": "boolean", "default": True},
            "urgent": {"type": "boolean"},
            "public": {"type": "boolean"},
        },
    }
    ui = {"notify": {"ui:widget": "toggle"}, "public": {"ui:widget": "radio"}}
    form = Form(schema, ui)
    assert form.at.checkbox(key="f.agree").value is False
    assert form.at.toggle(key="f.notify").value is True
    public = form.at.radio(key="f.public")
    assert public.options == ["Yes", "No"] and public.value is None
    form.at.checkbox(key="f.agree").check()
    assert form.submit() == {"agree": True, "notify": True, "urgent": False}
    form.at.radio(key="f.public").set_value(False)
    assert form.submit() == {"agree": True, "notify": True, "urgent": False, "public": False}


# --- choices ------------------------------------------------------------------------------


def test_enum_radio_with_enum_names_from_ui_schema_and_default() -> None:
    schema = {
        "type": "object",
        "properties": {"risk": {"type": "string", "enum": ["lo", "hi"], "default": "lo", "title": "Risk"}},
    }
    form = Form(schema, {"risk": {"ui:widget": "radio", "enumNames": ["Low", "High"]}})
    risk = form.at.radio(key="f.risk")
    assert risk.options == ["Low", "High"] and risk.value == "lo"
    risk.set_value("hi")
    assert form.submit() == {"risk": "hi"}


def test_one_of_and_any_of_consts_show_titles_and_return_consts() -> None:
    schema = {
        "type": "object",
        "properties": {
            "plan": {
                "title": "Plan",
                "oneOf": [{"const": "a", "title": "Plan A"}, {"const": "b", "title": "Plan B"}],
            },
            "level": {"anyOf": [{"const": 1, "title": "One"}, {"const": 2, "title": "Two"}]},
        },
        "required": ["plan"],
    }
    form = Form(schema)
    plan = form.at.selectbox(key="f.plan")
    assert (plan.label, plan.options) == ("Plan *", ["Plan A", "Plan B"])
    assert form.at.selectbox(key="f.level").options == ["One", "Two"]
    plan.select("b")
    form.at.selectbox(key="f.level").select(2)
    assert form.submit() == {"plan": "b", "level": 2}


def test_array_of_enums_is_a_multiselect() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {
                "type": "array",
                "items": {"enum": ["x", "y", "z"]},
                "uniqueItems": True,
                "maxItems": 2,
                "title": "Tags",
            },
            "teams": {
                "type": "array",
                "items": {
                    "type": "string",
                    "oneOf": [{"const": "ops", "title": "Operations"}, {"const": "fin", "title": "Finance"}],
                },
                "minItems": 1,
            },
        },
        "required": ["teams"],
    }
    form = Form(schema)
    tags = form.at.multiselect(key="f.tags")
    assert tags.options == ["x", "y", "z"] and tags.proto.max_selections == 2
    assert form.at.multiselect(key="f.teams").options == ["Operations", "Finance"]
    assert form.submit() is None
    assert form.errors_under("f.teams") == ["Teams: [] should be non-empty"]
    form.at.multiselect(key="f.teams").select("fin")
    assert form.submit() == {"teams": ["fin"]}  # empty optional "tags" left out
    form.at.multiselect(key="f.tags").select("z")
    assert form.submit() == {"tags": ["z"], "teams": ["fin"]}


# --- arrays of objects, nested objects, $ref ----------------------------------------------

LINES = {
    "$schema": D2020,
    "type": "object",
    "properties": {
        "lines": {"type": "array", "title": "Lines", "minItems": 1, "items": {"$ref": "#/$defs/line"}},
    },
    "$defs": {
        "line": {
            "type": "object",
            "title": "Line",
            "properties": {
                "sku": {"type": "string", "title": "SKU"},
                "qty": {"type": "integer", "minimum": 1, "title": "Qty"},
            },
            "required": ["sku"],
        }
    },
}


def test_array_of_objects_rows_add_and_remove() -> None:
    form = Form(LINES, value={"lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]})
    assert form.at.text_input(key="f.lines.0.sku").value == "A"
    assert form.at.text_input(key="f.lines.1.sku").value == "B"
    form.click("f.lines.0.remove")
    assert "f.lines.0.sku" not in form.widget_keys()
    assert form.at.button(key="f.lines.1.remove").disabled  # minItems 1 keeps the last row
    form.click("f.lines.add")
    assert form.at.text_input(key="f.lines.2.sku").value == ""
    form.at.text_input(key="f.lines.2.sku").input("C")
    form.at.number_input(key="f.lines.2.qty").set_value(3)
    assert form.submit() == {"lines": [{"sku": "B", "qty": 2}, {"sku": "C", "qty": 3}]}


def test_array_row_errors_land_under_the_row_field() -> None:
    form = Form(LINES)
    assert form.at.text_input(key="f.lines.0.sku").label == "SKU *"
    form.at.number_input(key="f.lines.0.qty").set_value(2)
    assert form.submit() is None
    assert form.errors_under("f.lines.0.sku") == ["SKU: this field is required"]
    assert form.errors_under("f.lines.0.qty") == []
    form.at.text_input(key="f.lines.0.sku").input("A")
    assert form.submit() == {"lines": [{"sku": "A", "qty": 2}]}


def test_array_of_plain_strings_uses_rows_and_drops_empty_ones() -> None:
    schema = {
        "type": "object",
        "properties": {"cc": {"type": "array", "items": {"type": "string", "format": "email"}}},
    }
    form = Form(schema, value={"cc": ["a@x.io"]})
    form.click("f.cc.add")
    form.click("f.cc.add")
    form.at.text_input(key="f.cc.2").input("b@x.io")
    assert form.submit() == {"cc": ["a@x.io", "b@x.io"]}


NESTED = {
    "$schema": D7,
    "type": "object",
    "definitions": {
        "address": {
            "type": "object",
            "title": "Address",
            "description": "Where to ship",
            "properties": {
                "city": {"type": "string", "title": "City"},
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
            },
            "required": ["city"],
        }
    },
    "properties": {
        "ship_to": {"$ref": "#/definitions/address", "title": "Ship to"},
        "bill_to": {"$ref": "#/definitions/address"},
    },
    "required": ["ship_to"],
}


def test_nested_objects_and_refs_to_definitions() -> None:
    form = Form(NESTED)
    assert form.at.text_input(key="f.ship_to.city").label == "City *"
    assert form.at.text_input(key="f.bill_to.city").label == "City *"
    captions = [c.value for c in form.at.caption]
    assert captions.count("Where to ship") == 2
    markdown = [m.value for m in form.at.markdown]
    assert "**Ship to** \\*" in markdown
    assert "**Address**" in markdown
    form.at.text_input(key="f.ship_to.city").input("Lyon")
    assert form.submit() == {"ship_to": {"city": "Lyon"}}  # empty optional bill_to left out


def test_nested_errors_name_the_nested_field() -> None:
    form = Form(NESTED)
    form.at.text_input(key="f.ship_to.zip").input("12")
    form.at.text_input(key="f.bill_to.zip").input("12345")
    assert form.submit() is None
    assert form.errors_under("f.ship_to.city") == ["City: this field is required"]
    assert form.errors_under("f.ship_to.zip") == ["Zip: '12' does not match '^[0-9]{5}$'"]
    assert form.errors_under("f.bill_to.city") == ["City: this field is required"]


def test_ref_siblings_follow_the_declared_draft() -> None:
    """Draft-07 ignores keywords beside $ref, 2020-12 applies them: jsonschema decides by $schema."""

    def schema(draft: str) -> dict[str, Any]:
        defs = "definitions" if draft == D7 else "$defs"
        return {
            "$schema": draft,
            "type": "object",
            defs: {"code": {"type": "string"}},
            "properties": {"code": {"$ref": f"#/{defs}/code", "pattern": "^[a-z]+$"}},
        }

    old = Form(schema(D7))
    old.at.text_input(key="f.code").input("abc123")
    assert old.submit() == {"code": "abc123"}
    new = Form(schema(D2020))
    new.at.text_input(key="f.code").input("abc123")
    assert new.submit() is None
    assert new.errors_under("f.code") == ["Code: 'abc123' does not match '^[a-z]+$'"]


def test_all_of_and_nullable_any_of_are_drawn_as_one_field() -> None:
    schema = {
        "type": "object",
        "$defs": {"base": {"properties": {"a": {"type": "string"}}}},
        "allOf": [
            {"$ref": "#/$defs/base"},
            {"properties": {"b": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}, "required": ["a"]},
        ],
    }
    form = Form(schema)
    assert form.at.text_input(key="f.a").label == "A *"
    form.at.text_input(key="f.a").input("x")
    form.at.number_input(key="f.b").set_value(4)
    assert form.submit() == {"a": "x", "b": 4}


# --- ui hints, readOnly, hidden, order ----------------------------------------------------


def test_read_only_fields_are_disabled_and_keep_their_value() -> None:
    schema = {
        "type": "object",
        "properties": {
            "ticket": {"type": "string", "readOnly": True, "default": "T-1"},
            "amount": {"type": "number", "readOnly": True, "default": 10},
            "note": {"type": "string"},
        },
    }
    form = Form(schema)
    ticket = form.at.text_input(key="f.ticket")
    assert ticket.disabled and form.at.number_input(key="f.amount").disabled
    assert not form.at.text_input(key="f.note").disabled
    with pytest.raises(AppTestError):
        ticket.input("T-2")
    assert form.submit() == {"ticket": "T-1", "amount": 10.0}


def test_hidden_fields_and_ui_order_and_help_hints() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "string"},
            "c": {"type": "string"},
            "token": {"type": "string", "default": "xyz"},
        },
    }
    ui = {
        "ui:order": ["c", "*", "a"],
        "token": {"ui:widget": "hidden"},
        "b": {"ui:help": "Say b", "ui:placeholder": "b...", "ui:title": "Bee"},
    }
    form = Form(schema, ui)
    assert form.widget_keys() == ["f.c", "f.b", "f.a", "f.submit"]
    bee = form.at.text_input(key="f.b")
    assert (bee.label, bee.help, bee.placeholder) == ("Bee", "Say b", "b...")
    assert form.submit() == {"token": "xyz"}


def test_const_is_shown_disabled_and_sent() -> None:
    schema = {"type": "object", "properties": {"kind": {"const": "refund", "title": "Kind"}}}
    form = Form(schema)
    assert form.at.text_input(key="f.kind").disabled
    assert form.submit() == {"kind": "refund"}


# --- what it cannot draw: JSON text areas, never an exception -----------------------------


def test_pattern_properties_falls_back_to_json_validated_by_its_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "labels": {
                "type": "object",
                "title": "Labels",
                "patternProperties": {"^[a-z]+$": {"type": "string"}},
                "additionalProperties": False,
            },
            "name": {"type": "string"},
        },
    }
    form = Form(schema, value={"labels": {"env": "prod"}})
    labels = form.at.text_area(key="f.labels")
    assert "Enter JSON" in labels.help and "patternProperties" in labels.help
    assert labels.value == '{\n  "env": "prod"\n}'
    assert form.submit() == {"labels": {"env": "prod"}}
    form.at.text_area(key="f.labels").input('{"Env": "prod"}')
    assert form.submit() is None
    assert form.errors_under("f.labels") == ["Labels: 'Env' does not match any of the regexes: '^[a-z]+$'"]
    form.at.text_area(key="f.labels").input('{"env": ')
    assert form.submit() is None
    [error] = form.errors_under("f.labels")
    assert error.startswith("Labels: not valid JSON")


def test_if_then_at_the_root_makes_the_whole_answer_json() -> None:
    schema = {
        "type": "object",
        "properties": {"kind": {"enum": ["a", "b"]}, "n": {"type": "integer"}},
        "if": {"properties": {"kind": {"const": "b"}}},
        "then": {"required": ["n"]},
    }
    form = Form(schema)
    assert form.widget_keys() == ["f.value", "f.submit"]
    form.at.text_area(key="f.value").input('{"kind": "b"}')
    assert form.submit() is None
    assert form.errors_under("f.value") == ["Answer › n: this field is required"]
    form.at.text_area(key="f.value").input('{"kind": "b", "n": 2}')
    assert form.submit() == {"kind": "b", "n": 2}


def test_recursive_refs_draw_one_level_then_json() -> None:
    schema = {
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/node", "title": "Root"}},
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "child": {"$ref": "#/$defs/node"}},
            }
        },
    }
    form = Form(schema)
    assert form.widget_keys() == ["f.root.name", "f.root.child", "f.submit"]
    assert "recursive reference" in form.at.text_area(key="f.root.child").help
    form.at.text_input(key="f.root.name").input("a")
    form.at.text_area(key="f.root.child").input('{"name": "b", "child": {"name": 3}}')
    assert form.submit() is None
    assert form.errors_under("f.root.child") == ["Child › child.name: 3 is not of type 'string'"]
    form.at.text_area(key="f.root.child").input('{"name": "b"}')
    assert form.submit() == {"root": {"name": "a", "child": {"name": "b"}}}


def test_broken_ref_falls_back_and_is_refused_only_when_filled() -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "string"}, "odd": {"$ref": "#/definitions/missing", "title": "Odd"}},
    }
    form = Form(schema)
    assert "does not resolve" in form.at.text_area(key="f.odd").help
    assert form.submit() == {}
    form.at.text_area(key="f.odd").input('"x"')
    assert form.submit() is None
    [error] = form.errors_under("f.odd")
    assert error.startswith("Odd: the answer cannot be checked") and "#/definitions/missing" in error


@pytest.mark.parametrize(
    "schema",
    [
        {
            "type": "object",
            "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
        {"type": "object", "properties": {"t": {"type": "array", "prefixItems": [{"type": "string"}]}}},
        {"type": "object", "properties": {"u": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}},
        {"type": "object", "properties": {"v": {"type": ["string", "integer"]}}},
        {"type": "object", "properties": {"w": {}}},
        {"type": "object", "properties": {"x": {"type": "array", "items": {"if": {}, "then": {}}}}},
        {"type": "object", "properties": {"y": {"$ref": "https://example.com/remote.json"}}},
        {"type": "object", "properties": {"z": {"$ref": "#/properties/z"}}},
        {
            "type": "object",
            "properties": {"r": {"$ref": "#/$defs/node"}},
            "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
        },
    ],
    ids=[
        "map",
        "tuple",
        "mixed-oneof",
        "type-list",
        "any",
        "if-items",
        "remote-ref",
        "ref-cycle",
        "recursive",
    ],
)
def test_undrawable_constructs_become_json_areas(schema: dict[str, Any]) -> None:
    form = Form(schema)
    areas = [a for a in form.at.text_area if "Enter JSON" in (a.help or "")]
    assert areas, form.widget_keys()
    assert form.submit() is not None or form.errors


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": 5}}},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}},
        {
            "type": "object",
            "properties": {"a": {"type": "integer", "minimum": 5, "maximum": 1, "default": 3}},
        },
        {"type": "object", "properties": {"a": {"enum": []}}},
        {"type": "object", "properties": {"a": {"type": "string", "format": "date", "default": "nope"}}},
        {"type": "object", "properties": "nonsense", "required": "a"},
        {"type": "object", "allOf": [{"properties": {"a": {"type": "string"}}}, {"type": "array"}]},
        {"$schema": "https://example.com/unknown", "type": "object"},
        True,
        {},
    ],
    ids=[
        "bad-type",
        "bad-regex",
        "min-over-max",
        "empty-enum",
        "bad-default",
        "nonsense",
        "allof-clash",
        "unknown-draft",
        "true",
        "empty",
    ],
)
def test_broken_schemas_never_raise(schema: Any) -> None:
    form = Form(schema)
    result = form.submit()
    assert result is not None or form.errors


def test_invalid_schema_is_reported_not_accepted() -> None:
    form = Form({"type": "object", "properties": {"a": {"type": 5}}})
    [warning] = [w.value for w in form.at.warning]
    assert warning.startswith("The form's schema is invalid")
    form.at.text_area(key="f.a").input('"x"')
    assert form.submit() is None
    assert any("schema is invalid" in e for e in form.errors)


def test_bounds_past_what_a_widget_holds_are_checked_by_the_schema() -> None:
    """Streamlit refuses integer bounds past 2**53: the widget has none, the schema checks."""
    schema = {
        "type": "object",
        "properties": {"big": {"type": "integer", "minimum": -(2**60), "maximum": 10, "title": "Big"}},
    }
    form = Form(schema)
    assert form.widget_keys() == ["f.big", "f.submit"]
    form.at.number_input(key="f.big").set_value(12)
    assert form.submit() is None
    assert form.errors_under("f.big") == ["Big: 12 is greater than the maximum of 10"]
    form.at.number_input(key="f.big").set_value(-3)
    assert form.submit() == {"big": -3}


def test_more_ui_hints_range_slider_date_widget_and_examples() -> None:
    schema = {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 0, "maximum": 10, "multipleOf": 2},
            "due": {"type": "string"},
            "ref": {"type": "string", "examples": ["PO-123"]},
            "rate": {"type": "number", "multipleOf": 0.125, "default": 0.25},
        },
    }
    form = Form(schema, {"score": {"ui:widget": "range"}, "due": {"ui:widget": "date"}})
    score = form.at.slider(key="f.score")
    assert (score.min, score.max, score.step, score.value) == (0, 10, 2, 0)
    assert form.at.text_input(key="f.ref").placeholder == "PO-123"
    assert form.at.number_input(key="f.rate").format == "%.3f"
    score.set_value(6)
    form.at.date_input(key="f.due").set_value(date(2027, 1, 31))
    assert form.submit() == {"score": 6, "due": "2027-01-31", "rate": 0.25}


def test_read_only_object_disables_its_fields_and_rows() -> None:
    schema = {
        "type": "object",
        "properties": {
            "vendor": {"type": "object", "readOnly": True, "properties": {"name": {"type": "string"}}},
            "lines": {"type": "array", "readOnly": True, "items": {"type": "string"}},
        },
    }
    form = Form(schema, value={"vendor": {"name": "ACME"}, "lines": ["a"]})
    assert form.at.text_input(key="f.vendor.name").disabled
    assert form.at.text_input(key="f.lines.0").disabled
    assert form.at.button(key="f.lines.add").disabled
    assert form.at.button(key="f.lines.0.remove").disabled
    assert form.submit() == {"vendor": {"name": "ACME"}, "lines": ["a"]}


def rows_app(lines):  # type: ignore[no-untyped-def]  # its source runs as the app
    import streamlit as st

    from components.schema_form import schema_form

    schema = {"type": "object", "properties": {"lines": {"type": "array", "items": {"type": "string"}}}}
    which = st.session_state.get("which", "A")
    st.session_state["last"] = schema_form(schema, key="f", value={"lines": lines[which]})


def test_the_same_key_drawing_another_request_starts_from_its_values() -> None:
    at = AppTest.from_function(
        rows_app, args=({"A": ["a1", "a2", "a3"], "B": ["b1"]},), default_timeout=30
    ).run()
    at.button(key="f.lines.1.remove").click().run()
    assert [t.value for t in at.text_input] == ["a1", "a3"]
    at.session_state["which"] = "B"
    at.run()
    assert [(t.key, t.value) for t in at.text_input] == [("f.lines.0", "b1")]
    at.session_state["which"] = "A"
    at.run()
    assert [t.value for t in at.text_input] == ["a1", "a2", "a3"]
    at.button(key="f.submit").click().run()
    assert at.session_state["last"] == {"lines": ["a1", "a2", "a3"]}


def test_a_pattern_error_shows_the_description_or_an_example_not_the_regex() -> None:
    schema = {
        "type": "object",
        "properties": {
            "ticket": {
                "type": "string",
                "title": "Ticket",
                "pattern": "^CHG-[0-9]+$",
                "description": "The change ticket: CHG- then its number",
                "examples": ["CHG-2041"],
            },
            "po": {"type": "string", "title": "PO", "pattern": "^PO-[0-9]+$", "examples": ["PO-7"]},
        },
    }
    form = Form(schema)
    form.at.text_input(key="f.ticket").input("ticket 42")
    form.at.text_input(key="f.po").input("7")
    assert form.submit() is None
    assert form.errors_under("f.ticket") == [
        "Ticket: 'ticket 42' is not in the expected form: The change ticket: CHG- then its "
        "number, for example 'CHG-2041'"
    ]
    assert form.errors_under("f.po") == ["PO: '7' is not in the expected form: something like 'PO-7'"]


HOSTILE = r"$$\color{red}{X}$$ **bold** [link](http://127.0.0.1/) _it_ <b>b</b>"


def _shown_as(markdown: str) -> str:
    """What a reader sees of ``markdown``: rendered (CommonMark), its text only."""
    import html

    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": False}).render(markdown)
    assert not re.search(r"<(a|img|em)\b", rendered), rendered
    assert rendered.count("<strong>") <= 1, rendered  # a heading's own bold, no more
    return html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace("\u2060", "").strip()


def test_titles_and_descriptions_from_the_schema_are_shown_as_written() -> None:
    schema = {
        "type": "object",
        "required": ["amount"],
        "properties": {
            "amount": {"type": "number", "title": HOSTILE, "description": HOSTILE, "maximum": 5},
            "note": {"type": "string", "title": HOSTILE, "description": HOSTILE},
            "group": {
                "type": "object",
                "title": HOSTILE,
                "description": HOSTILE,
                "properties": {"x": {"type": "string"}},
            },
            "rows": {
                "type": "array",
                "title": HOSTILE,
                "description": HOSTILE,
                "items": {"type": "object", "properties": {"y": {"type": "string"}}},
            },
        },
    }
    form = Form(schema)
    markdown = [
        str(w.label) for w in (form.at.number_input(key="f.amount"), form.at.text_input(key="f.note"))
    ]
    markdown += [
        str(w.help) for w in (form.at.number_input(key="f.amount"), form.at.text_input(key="f.note"))
    ]
    markdown += [str(c.value) for c in form.at.caption] + [str(m.value) for m in form.at.markdown]
    hostile = [m for m in markdown if "color" in m]
    assert len(hostile) >= 8, markdown  # two labels, two tooltips, two headings, two captions
    for text in hostile:
        # Streamlit draws $...$ as maths: every dollar is escaped; the rest reads as written.
        assert "$" not in text.replace("\\$", ""), text
        assert HOSTILE in _shown_as(text), text
    form.at.number_input(key="f.amount").set_value(9.0)
    assert form.submit() is None
    (error,) = form.errors_under("f.amount", markdown=True)
    assert "$" not in error.replace("\\$", "")
    assert _shown_as(error).startswith(HOSTILE + ": 9.0 is greater than the maximum of 5")


def test_a_radios_choice_labels_from_the_schema_are_shown_as_written() -> None:
    # A radio's options render Markdown and maths; enumNames come from the schema.
    schema = {"type": "object", "properties": {"pick": {"enum": ["a", "b"], "enumNames": [HOSTILE, "plain"]}}}
    form = Form(schema, {"pick": {"ui:widget": "radio"}})
    radio = form.at.radio(key="f.pick")
    shown = [str(option) for option in radio.options]
    assert "$" not in shown[0].replace("\\$", ""), shown
    assert _shown_as(shown[0]) == HOSTILE, shown
    assert shown[1] == "plain"
