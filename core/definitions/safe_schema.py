"""JSON Schemas from users, evaluated safely.

Approval forms carry JSON Schemas that people and agents write. Python's
``re`` backtracks: a ``pattern`` such as ``^(a+)+$`` takes seconds to
reject a 30-character answer, and jsonschema calls ``re.search`` while the
answering transaction holds the database's write lock. So every user
pattern (``pattern``, ``patternProperties``, ``format: regex``) runs under
RE2 (``google-re2``), which matches in linear time and refuses the few
constructs it cannot do that way (back-references, look-around); such a
pattern is refused when the schema is loaded, naming where it is. ``$ref``
may only point inside the schema (never fetched from elsewhere) and may not
loop back on itself, which would make validation recurse without end.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend, validator_for

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to the user, not to stderr
# Patterns compiled once per process; a schema is validated on every answer.
PATTERN_CACHE_SIZE = 512


class UnsafePattern(ValueError):
    """A regular expression RE2 cannot run in linear time."""


@functools.lru_cache(maxsize=PATTERN_CACHE_SIZE)
def compile_pattern(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UnsafePattern(
            f"pattern {pattern!r} is not supported ({reason}); back-references "
            "and look-around cannot run in linear time"
        ) from None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        compiled = compile_pattern(pattern)
    except UnsafePattern as exc:
        yield ValidationError(str(exc))
        return
    if compiled.search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        try:
            compiled = compile_pattern(pattern)
        except UnsafePattern as exc:
            yield ValidationError(str(exc))
            continue
        for key, value in instance.items():
            if compiled.search(key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


_FORMATS = FormatChecker()


@_FORMATS.checks("regex", raises=UnsafePattern)
def _is_regex(instance: object) -> bool:
    if isinstance(instance, str):
        compile_pattern(instance)
    return True


@functools.cache
def _safe_class(base: type[Validator]) -> type[Validator]:
    return extend(base, {"pattern": _pattern, "patternProperties": _pattern_properties})


def safe_validator(schema: dict[str, Any]) -> Validator:
    """A validator for ``schema`` (its own draft) whose patterns run under RE2."""
    cls = _safe_class(validator_for(schema, default=Draft202012Validator))
    checker = FormatChecker()
    for name in cls.FORMAT_CHECKER.checkers:
        if name != "regex":
            checker.checkers[name] = cls.FORMAT_CHECKER.checkers[name]
    checker.checkers["regex"] = _FORMATS.checkers["regex"]
    return cls(schema, format_checker=checker)


# -- checked when a schema is loaded ------------------------------------------------------


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(path, keyword, value) of every keyword in a schema."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            yield here, str(key), value
            yield from _walk(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, f"{path}[{index}]")


def _pointer(schema: Any, ref: str) -> Any:
    node = schema
    for part in ref[2:].split("/") if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _refs_in(node: Any) -> Iterator[str]:
    for _, keyword, value in _walk(node, ""):
        if keyword == "$ref" and isinstance(value, str):
            yield value


def schema_problems_at_load(schema: Any, where: str = "schema") -> list[str]:
    """Why a user's JSON Schema cannot be used, each problem by its path."""
    problems: list[str] = []
    for path, keyword, value in _walk(schema, where):
        if keyword == "pattern" and isinstance(value, str):
            problems.extend(_unsafe(value, path))
        elif keyword == "patternProperties" and isinstance(value, dict):
            for pattern in value:
                problems.extend(_unsafe(pattern, f"{path}.{pattern}"))
        elif keyword in ("$ref", "$dynamicRef") and isinstance(value, str) and not value.startswith("#"):
            problems.append(f"{path}: only references inside the schema (#/...) are allowed, not {value!r}")
    if not problems and isinstance(schema, dict):
        problems.extend(_ref_cycles(schema, where))
    return problems


def _unsafe(pattern: str, path: str) -> list[str]:
    try:
        compile_pattern(pattern)
    except UnsafePattern as exc:
        return [f"{path}: {exc}"]
    return []


def _ref_cycles(schema: dict[str, Any], where: str) -> list[str]:
    """A ``$ref`` that leads back to itself (validation would never end)."""
    for start in dict.fromkeys(_refs_in(schema)):
        seen: set[str] = set()
        stack = [start]
        while stack:
            ref = stack.pop()
            if ref in seen:
                continue
            seen.add(ref)
            target = _pointer(schema, ref)
            if target is None:
                return [f"{where + ': ' if where else ''}$ref {ref!r} points at nothing"]
            inner = list(_refs_in(target)) if ref != "#" else ["#"]
            if start in inner or ref == "#":
                return [
                    f"{where + ': ' if where else ''}$ref {start!r} refers back to itself; "
                    "recursive schemas are not allowed"
                ]
            stack.extend(inner)
    return []


__all__ = ["UnsafePattern", "compile_pattern", "safe_validator", "schema_problems_at_load"]
