"""Values both databases store alike: JSON without NUL characters, lone
surrogates or non-finite numbers.

PostgreSQL refuses a NUL character in text and JSONB, and NaN or Infinity in
JSONB; SQLite stores all three. A lone UTF-16 surrogate (``"\\ud800"``, which
JSON text may spell and ``json.loads`` turns into a string) is not Unicode text:
neither driver can encode it, and nothing could print it. Input is checked here
first, so it is refused the same way on both, by path, with a named error
instead of a driver error.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

NUL = "\x00"
# A code point of the UTF-16 surrogate range on its own (a pair is one code point in Python).
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")
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
                return (
                    f"{path or '(value)'}: nested deeper than {limit} levels "
                    "(mappings and lists inside each other)"
                )
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return None


# A JSON string (its escapes included), skipped when brackets are counted.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_OPENING = frozenset(b"[{")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(raw: bytes | str, path: str = "(body)", limit: int = MAX_NESTING) -> str | None:
    """``path: reason`` when JSON text nests deeper than ``limit`` levels, else None.

    Measured on the text itself, before anything parses it (``json.loads`` recurses
    and gives up around 1,000 levels): brackets are counted outside strings, in one
    pass that stops at the first level too many. Text that is not JSON at all is
    measured the same way; parsing refuses it afterwards.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return f"{path}: nested deeper than {limit} levels (mappings and lists inside each other)"
        else:
            depth -= 1
    return None


def load_json(raw: bytes | str, path: str = "(body)", limit: int = MAX_NESTING) -> Any:
    """JSON text parsed, once it is known to nest at most ``limit`` levels.

    Raises ``ValueError`` naming the limit, or saying why the text is not JSON.
    """
    if deep := json_too_deep(raw, path, limit):
        raise ValueError(deep)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def unstorable(value: Any, path: str = "") -> list[str]:
    """Every place in ``value`` a database could not store, as ``path: reason``."""
    if deep := too_deep(value, path):
        return [deep]
    return _unstorable(value, path)


def _text_problem(text: str) -> str | None:
    if NUL in text:
        return "contains a NUL character"
    if surrogate := _SURROGATE.search(text):
        return f"contains a lone surrogate (\\u{ord(surrogate.group()):04x}), which is not Unicode text"
    return None


def _unstorable(value: Any, path: str) -> list[str]:
    where = path or "(value)"
    if isinstance(value, str):
        return [f"{where}: {why}"] if (why := _text_problem(value)) else []
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: {value} is not a JSON number"]
    problems: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (why := _text_problem(key)):
                problems.append(f"{where}: a key {why}")
            problems += _unstorable(item, _join(path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problems += _unstorable(item, _join(path, index))
    return problems


def unsendable_character(*values: Any, nul: bool = True) -> str | None:
    """The first lone surrogate, or NUL (``nul``), in a value (a string, or one inside
    mappings and lists, keys included), else None: one pass for both, as every
    statement's parameters are checked (``core.store.db``)."""
    pattern = _UNSENDABLE if nul else _SURROGATE
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if found := pattern.search(value):
                return found.group()
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return None


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
