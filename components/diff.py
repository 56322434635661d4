"""Differences between two JSON documents, path by path (pure, no Streamlit)."""

from __future__ import annotations

import json
from typing import Any

MISSING = "(absent)"


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and (value or not prefix):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and value and all(isinstance(i, dict | list) for i in value):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}[{index}]", out)
    else:
        out[prefix or "(value)"] = value


def flatten(value: Any) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists of objects by index."""
    out: dict[str, Any] = {}
    _flatten(value, "", out)
    return out


def json_diff(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """(path, before, after) for every path whose value differs, sorted by path."""
    old, new = flatten(before if before is not None else {}), flatten(after if after is not None else {})
    changes = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path, MISSING), new.get(path, MISSING)
        if a != b:
            changes.append((path, a, b))
    return changes


def short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff_summary(before: Any, after: Any, *, limit: int = 3) -> str:
    """One line: ``status: running → paused; context.x: 1 → 2 (+2 more)``."""
    changes = json_diff(before, after)
    parts = [f"{path}: {short(a, 40)} → {short(b, 40)}" for path, a, b in changes[:limit]]
    if len(changes) > limit:
        parts.append(f"(+{len(changes) - limit} more)")
    return "; ".join(parts)


__all__ = ["flatten", "json_diff", "diff_summary", "short", "MISSING"]
