"""The one clock: aware UTC datetimes (the tables store them; SQLite returns them naive)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
