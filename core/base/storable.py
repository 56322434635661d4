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
import sys
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


# Each byte of JSON text as b"1" (a digit) or b"0" (anything else): a run of digits too
# long is then one substring search, linear (a regex of {4301} digits retries inside
# every run: 20 s on a megabyte of 4,300-digit numbers).
_DIGIT_MASK = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))


class _LongInteger:
    """Where an integer too long to read stood in parsed JSON."""


def json_integer_too_long(raw: bytes | str, path: str = "", root: str = "(body)") -> str | None:
    """``path: reason`` for the first integer in JSON text longer than Python reads from
    text (``sys.get_int_max_str_digits()``, 4300 by default), else None.

    ``json.loads`` refuses such a number with a ValueError that names no place, which
    FastAPI answers with a bare "error parsing the body". ``path`` is put before the
    number's place (``input.x[2]``; ``root`` for the whole text). Only text holding a run
    of that many digits is parsed here; text that is not JSON is left to its parser.
    """
    limit = sys.get_int_max_str_digits()
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not limit or b"1" * (limit + 1) not in data.translate(_DIGIT_MASK):
        return None
    marker = _LongInteger()
    try:
        value = json.loads(data, parse_int=lambda text: marker if len(text.lstrip("-")) > limit else 0)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if node is marker:
            return f"{where or root}: an integer longer than {limit} digits"
        if isinstance(node, dict):
            stack.extend((item, _join(where, key)) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            places = [f"{where or root}[{index}]" for index in range(len(node))]
            stack.extend(reversed(list(zip(node, places, strict=True))))
    return None


def load_json(raw: bytes | str, path: str = "(body)", limit: int = MAX_NESTING) -> Any:
    """JSON text parsed, once it is known to nest at most ``limit`` levels.

    Raises ``ValueError`` naming the limit, or saying why the text is not JSON (an
    integer too long to read: by its place).
    """
    if deep := json_too_deep(raw, path, limit):
        raise ValueError(deep)
    if long := json_integer_too_long(raw, "" if path.startswith("(") else path, root=path):
        raise ValueError(long)
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
