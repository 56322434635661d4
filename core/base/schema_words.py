"""A JSON Schema validation error in words a person reads, not a regex or a keyword.

A ``pattern`` failure shows the field's ``description`` (or an example)
instead of the regular expression, when the schema has one. A number out of
bounds is a sentence with the numbers as people write them: "must be more
than 0", "must be less than 10"; jsonschema's own "12 is greater than the
maximum of 10" stays for an inclusive bound of a plain number. An amount of
money (``x-currency`` in its schema, as a budget's approved amount has) is
written with thousands separators and cents: "100,000.00 is more than the
75,000.00 USD requested; you may only lower it". Anything else keeps
jsonschema's own message.
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


# Past this many digits an amount is written in scientific notation (1.00e+30).
_MONEY_DIGITS = 24


def _number(value: Any, money: bool = False) -> str:
    """A number as people write it: 0, 12, 2.5; money as 75,000.00."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if money and value != 0 and abs(value) < 10**_MONEY_DIGITS:
        return f"{value:,.2f}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 10**_MONEY_DIGITS:
        return str(int(value))
    return f"{value:.3g}" if isinstance(value, float) and abs(value) >= 10**_MONEY_DIGITS else str(value)


def _bound(kind: str, schema: dict[str, Any], value: Any, bound: Any) -> str | None:
    currency = schema.get("x-currency")
    money = isinstance(currency, str) and bool(currency)
    limit = _number(bound, money)
    if kind == "exclusiveMinimum":
        return f"must be more than {limit}"
    if kind == "exclusiveMaximum":
        return f"must be less than {limit}"
    if not money:
        return None  # jsonschema's sentence: "12 is greater than the maximum of 10"
    if kind == "minimum":
        return f"must be at least {limit} {currency}"
    return f"{_number(value, money)} is more than the {limit} {currency} requested; you may only lower it"


def in_words(error: ValidationError) -> str:
    """The error as a sentence about the value the person typed."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind, value = error.validator, error.instance
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        said = _bound(str(kind), schema, value, error.validator_value)
        if said is not None:
            return said
    expected = _expected_form(schema) if kind == "pattern" else None
    if expected and "does not match" in str(error.message):  # not an unsafe pattern's refusal
        return f"{_shown(value)} is not in the expected form: {expected}"
    return str(error.message)
