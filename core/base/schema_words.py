"""A JSON Schema validation error in words a person reads, not a regex or a keyword.

A ``pattern`` failure shows the field's ``description`` (or an example)
instead of the regular expression, when the schema has one. Anything else keeps
jsonschema's own message (already a sentence: "60000 is greater than the
maximum of 50000").
"""

from __future__ import annotations

from typing import Any

from jsonschema import ValidationError

_SHORT = 60


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"


def _expected_form(schema: dict[str, Any]) -> str | None:
    description = schema.get("description")
    examples = schema.get("examples")
    example = examples[0] if isinstance(examples, list) and examples else None
    if isinstance(description, str) and description.strip():
        words = description.strip().rstrip(".")
        return f"{words}" + (f", for example {_shown(example)}" if example is not None else "")
    if example is not None:
        return f"something like {_shown(example)}"
    return None


def in_words(error: ValidationError) -> str:
    """The error as a sentence about the value the person typed."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind, value = error.validator, error.instance
    expected = _expected_form(schema) if kind == "pattern" else None
    if expected and "does not match" in str(error.message):  # not an unsafe pattern's refusal
        return f"{_shown(value)} is not in the expected form: {expected}"
    return str(error.message)
