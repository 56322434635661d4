"""Which failures are worth trying again, and how long to wait before the next try.

A failure is *transient* when the same call may well succeed a little later:
the database dropped the connection, a service refused or reset it, a call
timed out, or a tool said so by raising ``core.base.errors.TransientError``. The
executor retries those by a step's retry policy; anything else (a bug, bad
input, a refusal) fails the step at once, because trying again would fail
the same way.

Exceptions are classified by type, following ``raise ... from`` causes (an
agent library that wraps a model timeout in its own error is still a
timeout). Library types are only checked when that library is already
imported: an exception of a library nobody imported cannot exist.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from core.base.errors import DatabaseError, TransientError

if TYPE_CHECKING:
    from core.store.db import Database

# How deep ``raise ... from`` chains are followed.
MAX_CAUSE_DEPTH = 8


def _library_types(module: str, names: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    loaded = sys.modules.get(module)
    if loaded is None:
        return ()
    return tuple(t for name in names if isinstance(t := getattr(loaded, name, None), type))


def _causes(exc: BaseException) -> list[BaseException]:
    chain = [exc]
    while len(chain) < MAX_CAUSE_DEPTH and chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    return chain


def _database_gone(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _library_types("psycopg", ("OperationalError", "InterfaceError")))


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached (down, restarting, dropped)."""
    return any(_database_gone(e) for e in _causes(exc))


def first_line(exc: BaseException) -> str:
    """A driver error's first line (the rest is SQL and a documentation link):
    what an outage warning logs instead of a traceback."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _transient_one(exc: BaseException) -> bool:
    if isinstance(exc, TransientError | TimeoutError | ConnectionError):
        return True
    if _database_gone(exc):
        return True
    if isinstance(exc, DatabaseError):
        return False  # a translated refusal; its cause (if any) decides above
    library = _library_types("httpx", ("TimeoutException", "NetworkError")) + _library_types(
        "openai", ("APITimeoutError", "APIConnectionError")
    )
    return bool(library) and isinstance(exc, library)


def is_transient(exc: BaseException) -> bool:
    """True when trying the same call again later may succeed."""
    return any(_transient_one(e) for e in _causes(exc))


def backoff_delay(initial: float, multiplier: float, maximum: float, failed_attempt: int) -> float:
    """Seconds to wait after failed attempt number ``failed_attempt`` (1-based).

    ``initial`` after the first failure, times ``multiplier`` after each
    further one, never more than ``maximum``.
    """
    exponent = max(0, failed_attempt - 1)
    try:
        delay = initial * multiplier**exponent
    except OverflowError:
        return float(maximum)
    return float(min(delay, maximum))


def database_answers(db: Database) -> bool:
    """True when ``SELECT 1`` succeeds on ``db`` now (a fresh or re-checked connection)."""
    try:
        with db.read() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to answer is "not yet"
        if is_database_unavailable(exc):
            return False
        raise
    return True
