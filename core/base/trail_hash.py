"""The tamper-evident trail's hashing (core.records.trail): the canonical form of an
entry and its SHA-256, pure functions shared by the trail, its verification and
migration 0012's backfill (so a row is hashed one way, wherever it is hashed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.sql.elements import Null

GENESIS = "0" * 64
PLATFORM_CHAIN = "platform"
EVENT_FIELDS = (
    "workflow_id",
    "approval_id",
    "session_id",
    "event_type",
    "actor",
    "step_name",
    "before",
    "after",
    "data",
    "created_at",
)
VOTE_FIELDS = ("approval_id", "approver", "level", "decision", "channel", "comment", "data", "created_at")


# Exact types that come back as they are: the common case, checked first (every step
# seals two entries on the runner's hot path).
_AS_THEY_ARE = frozenset({str, int, bool, type(None)})


def _normalised(value: Any) -> Any:
    """``value`` as both databases give it back: integral floats as integers (PostgreSQL's
    JSONB returns 1e20 as an integer), timestamps as UTC ISO strings, SQL NULL as None."""
    kind = type(value)
    if kind in _AS_THEY_ARE:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): _normalised(v) for k, v in value.items()}
    if kind is list:
        return [_normalised(v) for v in value]
    if isinstance(value, Null):
        return None
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite without the column type: stored as UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, Mapping):
        return {str(k): _normalised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalised(v) for v in value]
    raise TypeError(f"cannot seal a {type(value).__name__} in the audit trail")


def canonical(value: Any) -> bytes:
    """The one byte form an entry is hashed in: sorted keys, no spaces, ASCII."""
    return json.dumps(
        _normalised(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def content_of(kind: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """What an entry's hash covers of its row (``kind``: event or vote)."""
    fields = EVENT_FIELDS if kind == "event" else VOTE_FIELDS
    return {name: row.get(name) for name in fields}


def entry_hash(kind: str, content: Mapping[str, Any], *, chain: str, seq: int, prev: str) -> str:
    """SHA-256 (hex) of one entry: its kind, content, chain, position and the previous hash."""
    return hashlib.sha256(
        canonical({"kind": kind, "chain": chain, "seq": seq, "prev": prev, "content": content})
    ).hexdigest()


def event_chain(workflow_id: str | None, session_id: str | None, approval_id: str | None) -> str:
    if workflow_id:
        return str(workflow_id)
    if session_id:
        return f"session:{session_id}"
    if approval_id:
        return f"approval:{approval_id}"
    return PLATFORM_CHAIN


__all__ = [
    "GENESIS",
    "PLATFORM_CHAIN",
    "EVENT_FIELDS",
    "VOTE_FIELDS",
    "canonical",
    "content_of",
    "entry_hash",
    "event_chain",
]
