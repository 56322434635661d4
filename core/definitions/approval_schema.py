"""The JSON Schema an approval's answer must satisfy, per approval type."""

from __future__ import annotations

from typing import Any

from core.base.schema_words import in_words
from core.definitions.approval import ApprovalConfig
from core.definitions.safe_schema import safe_validator

# Formats the seed uses that are UI hints, not JSON Schema formats.
UI_ONLY_FORMATS = {"textarea": "textarea", "password": "password"}
_FIELD_META = {"name", "required", "enumNames"}


def form_fields_schema(config: ApprovalConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The seed's ``form_fields`` list as a JSON Schema plus UI hints."""
    properties: dict[str, Any] = {}
    ui: dict[str, Any] = {}
    required: list[str] = []
    for field in config.form_fields or []:
        spec = field.model_dump(exclude_none=True)
        prop = {k: v for k, v in spec.items() if k not in _FIELD_META}
        hint = UI_ONLY_FORMATS.get(str(prop.get("format")))
        if hint:
            prop.pop("format")
            ui.setdefault(field.name, {})["ui:widget"] = hint
        if "enumNames" in spec:
            ui.setdefault(field.name, {})["enumNames"] = spec["enumNames"]
            prop["enumNames"] = spec["enumNames"]
        properties[field.name] = prop
        if field.required:
            required.append(field.name)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
    }
    if required:
        schema["required"] = required
    return schema, ui


def budget_schema(amount: float | None, currency: str) -> dict[str, Any]:
    approved: dict[str, Any] = {
        "type": "number",
        "exclusiveMinimum": 0,
        "title": f"Approved amount ({currency})",
        "description": "Approve the requested amount or a lower one.",
        # An amount of money: errors say it with cents and the currency (core.base.schema_words).
        "x-currency": currency,
    }
    if amount is not None:
        approved["maximum"] = amount
        approved["default"] = amount
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"approved_amount": approved},
    }


def response_schema(
    config: ApprovalConfig, amount: float | None, currency: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Schema and UI hints for an approval's answer."""
    ui = dict(config.ui_schema or {})
    if config.json_schema is not None:
        return config.json_schema, ui
    if config.type == "form":
        schema, hints = form_fields_schema(config)
        return schema, {**hints, **ui}
    if config.type == "budget":
        return budget_schema(amount, currency), ui
    return {"type": "object"}, ui


def schema_problems(schema: dict[str, Any], data: Any) -> list[str]:
    """Every way ``data`` breaks ``schema``, formats included, by path (patterns under RE2)."""
    validator = safe_validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path) or "(answer)"
        problems.append(f"{path}: {in_words(error)}")
    return problems
