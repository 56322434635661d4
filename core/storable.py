"""Values both databases store alike: JSON without NUL characters or non-finite numbers.

PostgreSQL refuses a NUL character in text and JSONB, and NaN or Infinity in
JSONB; SQLite stores all three. Input is checked here first, so it is refused
the same way on both, by path, with a named error instead of a driver error.
"""

from __future__ import annotations

import math
from typing import Any

NUL = "\x00"
# How deep stored JSON may nest (mappings and lists inside each other). Deeper
# documents are refused before anything walks them recursively (pydantic,
# jsonschema, the JSON encoder), which would otherwise overflow the stack.
MAX_NESTING = 64


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def too_deep(value: Any, path: str = "", limit: int = MAX_NESTING) -> str | None:
    """``path: reason`` when ``value`` nests deeper than ``limit`` levels, else None.

    Iterative, so a document nested 100,000 deep is measured without recursion.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list | tuple):
            if depth >= limit:
                return (f"{path or '(value)'}: nested deeper than {limit} levels "
                        "(mappings and lists inside each other)")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return None


def unstorable(value: Any, path: str = "") -> list[str]:
    """Every place in ``value`` a database could not store, as ``path: reason``."""
    if deep := too_deep(value, path):
        return [deep]
    return _unstorable(value, path)


def _unstorable(value: Any, path: str) -> list[str]:
    where = path or "(value)"
    if isinstance(value, str):
        return [f"{where}: contains a NUL character"] if NUL in value else []
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: {value} is not a JSON number"]
    problems: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                problems.append(f"{where}: a key contains a NUL character")
            problems += _unstorable(item, _join(path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problems += _unstorable(item, _join(path, index))
    return problems


def holds_nul(*values: Any) -> bool:
    """True when a value (a string, or one inside mappings and lists) holds a NUL:
    nothing stored matches it (``unstorable`` refuses it on the way in), and
    PostgreSQL cannot even compare one."""
    for value in values:
        if isinstance(value, str):
            if NUL in value:
                return True
        elif isinstance(value, dict):
            if holds_nul(*value.values()):
                return True
        elif isinstance(value, list | tuple) and holds_nul(*value):
            return True
    return False
