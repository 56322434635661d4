"""The bounds every definition is checked against when it is loaded (each refusal
names the path and the limit), and the value types they bound."""

from __future__ import annotations

import math
import os
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
)

from core.base.durations import parse_duration

# Bounds every definition is checked against when it is loaded (each refusal
# names the path and the limit).
MAX_DEFINITION_BYTES = 1_000_000
DEFAULT_MAX_STEPS = 1000
MAX_STEPS_ENV = "COUNTERSIGN_MAX_STEPS"
DEFAULT_MAX_AMOUNT = 1e12
MAX_AMOUNT_ENV = "COUNTERSIGN_MAX_AMOUNT"
# An approval request's title: what ``approval_requests.title`` holds.
MAX_TITLE_LENGTH = 500


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def max_steps() -> int:
    """Steps one workflow may have (``COUNTERSIGN_MAX_STEPS``, default 1,000)."""
    return int(_env_number(MAX_STEPS_ENV, DEFAULT_MAX_STEPS))


def max_amount() -> float:
    """The largest amount a budget may ask for (``COUNTERSIGN_MAX_AMOUNT``, default 10^12)."""
    return _env_number(MAX_AMOUNT_ENV, DEFAULT_MAX_AMOUNT)


def check_amount(value: Any) -> float:
    """A budget amount: a finite number from 0 to ``max_amount()`` (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {value!r}")
    try:
        amount = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, not {value!r}") from None
    if not math.isfinite(amount):
        raise ValueError(f"must be a finite number, not {value!r}")
    if amount < 0 or amount > max_amount():
        raise ValueError(f"must be between 0 and {max_amount():,.0f} ({MAX_AMOUNT_ENV})")
    return amount


Duration = Annotated[float, BeforeValidator(parse_duration)]
ApproverList = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]
