"""A string longer than its column holds is refused in words before anything is written.

PostgreSQL refuses such a value with a driver error that names only the type
(``value too long for type character varying(200)``), and SQLite stores it
whole, so the same input failed on one database and passed on the other. A
``before_flush`` hook checks the bounded text columns of every object the
flush would insert, and the changed ones of every object it would update, and
raises ``TooLong`` naming each field, its length and the limit; the flush
writes nothing and the caller's transaction rolls back as on any error.

Writers outside the ORM check what they write with ``too_long`` themselves
(``core.engine.create_path``) or write values bounded before (the runner's Core
paths: names from a validated definition, ids, hashes).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, event, inspect
from sqlalchemy.orm import Mapper, Session, UOWTransaction

from core.base.errors import TooLong

__all__ = ["too_long"]


_LIMITS: dict[type, tuple[tuple[str, int], ...]] = {}


def _limits(cls: type) -> tuple[tuple[str, int], ...]:
    """(attribute, length) of each bounded text column of a mapped class."""
    limits = _LIMITS.get(cls)
    if limits is None:
        mapper: Mapper[Any] = inspect(cls)
        found = []
        for attr in mapper.column_attrs:
            kind = attr.columns[0].type
            if isinstance(kind, String) and kind.length:
                found.append((attr.key, kind.length))
        limits = _LIMITS[cls] = tuple(found)
    return limits


def too_long(obj: Any, *, changed_only: bool = False) -> list[str]:
    """Each of ``obj``'s values longer than its column, as ``field: N characters, at
    most M`` (``changed_only``: only values set since it was loaded)."""
    state = inspect(obj)
    problems = []
    for key, limit in _limits(type(obj)):
        value = state.dict.get(key)  # never loads an attribute
        if isinstance(value, str) and len(value) > limit:
            if changed_only and not state.attrs[key].history.has_changes():
                continue
            problems.append(f"{key}: {len(value):,} characters, at most {limit:,}")
    return problems


@event.listens_for(Session, "before_flush")
def _refuse_too_long(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    problems = [problem for obj in session.new for problem in too_long(obj)]
    problems += [problem for obj in session.dirty for problem in too_long(obj, changed_only=True)]
    if problems:
        raise TooLong(problems)
