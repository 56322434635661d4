"""How a failed step is tried again (``retry: {max_attempts, backoff, on}``): the
policy of a step or a workflow, its defaults, the seed's older spelling folded
into today's, and the delay before each attempt.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    model_validator,
)

from core.base.retry import backoff_delay, is_transient
from core.definitions.approval import _Strict
from core.definitions.limits import Duration

__all__ = [
    "DEFAULT_BACKOFF_INITIAL",
    "DEFAULT_BACKOFF_MAX",
    "DEFAULT_BACKOFF_MULTIPLIER",
    "DEFAULT_MAX_ATTEMPTS",
    "Backoff",
    "RetryOn",
    "RetryPolicy",
]


# Retry defaults: a step failed by a transient error (see core.base.retry) is tried
# three times in all, 2 s then 4 s apart (doubling, never more than 5 min).
DEFAULT_MAX_ATTEMPTS = 3


DEFAULT_BACKOFF_INITIAL = 2.0


DEFAULT_BACKOFF_MULTIPLIER = 2.0


DEFAULT_BACKOFF_MAX = 300.0


class Backoff(_Strict):
    initial: Duration = DEFAULT_BACKOFF_INITIAL
    multiplier: float = Field(default=DEFAULT_BACKOFF_MULTIPLIER, ge=1.0, le=10.0)
    max: Duration = DEFAULT_BACKOFF_MAX


def _fold_old_retry_spelling(data: Any) -> Any:
    """The seed's ``{attempts, backoff: 2s, factor, max_backoff}`` in today's shape.

    The seed's policy retried a step whatever failed it, so that spelling
    keeps ``on: [any]`` unless it says otherwise.
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if True in data and "on" not in data:
        # ``on:`` read by a YAML 1.1 loader other than ours (core.definitions.definition_text).
        data["on"] = data.pop(True)
    if "attempts" in data:
        if "max_attempts" in data:
            raise ValueError("attempts|give max_attempts or attempts, not both")
        data["max_attempts"] = data.pop("attempts")
        data.setdefault("on", ["any"])
    backoff = data.get("backoff")
    if backoff is not None and not isinstance(backoff, dict):
        data["backoff"] = backoff = {"initial": backoff}
    for old, new in (("factor", "multiplier"), ("max_backoff", "max")):
        if old in data:
            data["backoff"] = backoff = {**(backoff or {}), new: data.pop(old)}
    return data


RetryOn = Literal["transient", "any"]


def _retry_transient_only() -> list[RetryOn]:
    return ["transient"]


class RetryPolicy(_Strict):
    """How a failed step is tried again: ``retry: {max_attempts, backoff, on}``.

    ``on`` lists what is retried: ``transient`` (database connection lost,
    timeouts, connection errors, ``TransientError``; see core.base.retry) or
    ``any`` (every error). ``max_attempts`` counts the first try.
    """

    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=100)
    backoff: Backoff = Field(default_factory=Backoff)
    on: list[RetryOn] = Field(default_factory=_retry_transient_only, min_length=1)

    _fold = model_validator(mode="before")(_fold_old_retry_spelling)

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after failed attempt number ``failed_attempt``."""
        return backoff_delay(self.backoff.initial, self.backoff.multiplier, self.backoff.max, failed_attempt)

    def retries(self, exc: BaseException, failed_attempt: int) -> bool:
        """Whether attempt ``failed_attempt``, failed by ``exc``, is followed by another."""
        if failed_attempt >= self.max_attempts:
            return False
        return "any" in self.on or is_transient(exc)

    def over(self, base: RetryPolicy) -> RetryPolicy:
        """This policy's given fields over ``base``'s (a step's over its workflow's)."""
        merged = base.model_dump(exclude_unset=True)
        for key, value in self.model_dump(exclude_unset=True).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return RetryPolicy.model_validate(merged)
