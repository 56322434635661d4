"""Values both databases store alike: JSON without NUL characters or non-finite numbers.

PostgreSQL refuses a NUL character in text and JSONB, and NaN or Infinity in
JSONB; SQLite stores all three. Input is checked here first, so it is refused
the same way on both, by path, with a named error instead of a driver error.
"""

from __future__ import annotations

import math
from typing import Any

NUL = "\x00"


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def unstorable(value: Any, path: str = "") -> list[str]:
    """Every place in ``value`` a database could not store, as ``path: reason``."""
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
            problems += unstorable(item, _join(path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problems += unstorable(item, _join(path, index))
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
