"""How long an approver has, in the words every channel shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.approvals.inbox import time_left

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "words"),
    [
        (timedelta(days=2, hours=3, minutes=5), "2d 3h left"),
        (timedelta(hours=3, minutes=12, seconds=40), "3h 12m left"),
        (timedelta(minutes=14, seconds=59), "14m left"),
        (timedelta(minutes=1), "1m left"),
        (timedelta(seconds=59), "59s left"),
        (timedelta(seconds=5), "5s left"),
        (timedelta(milliseconds=300), "1s left"),
        (timedelta(0), "expired"),
        (timedelta(seconds=-30), "expired"),
    ],
)
def test_time_left_says_what_is_left(left: timedelta, words: str) -> None:
    assert time_left(NOW + left, NOW) == words


def test_no_deadline() -> None:
    assert time_left(None, NOW) == "no deadline"
