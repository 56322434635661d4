"""The database behind an async caller's ``AsyncSession`` or async URL.

Countersign's engine is synchronous (psycopg 3, sqlite3). The awaitable API
(``core.orchestrator_async``) does not fork it: it finds the database the
caller's async session or URL points at, opens the process-wide synchronous
``Database`` for the same place (``core.store.db.get_database``), and runs the
same core in worker threads.

| the caller's driver | Countersign's |
| --- | --- |
| ``postgresql+asyncpg`` | ``postgresql+psycopg`` (``ssl=`` becomes ``sslmode=``) |
| ``postgresql+psycopg`` / ``+psycopg_async`` (async) | ``postgresql+psycopg`` |
| ``sqlite+aiosqlite`` | ``sqlite`` (the same file; not ``:memory:``) |
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, make_url

from core.base.errors import ConfigurationError

if TYPE_CHECKING:
    from core.store.db import Database

# Query parameters only asyncpg understands; psycopg would refuse them.
_ASYNCPG_ONLY = (
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
    "command_timeout",
    "server_settings",
    "direct_tls",
)
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

_checked_lock = threading.Lock()
_checked: set[str] = set()


def sync_url(url: str | URL) -> str:
    """The synchronous URL of the database an async URL names (password kept)."""
    parsed = make_url(url) if isinstance(url, str) else url
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "postgresql":
        query = dict(parsed.query)
        if driver == "asyncpg":
            for key in _ASYNCPG_ONLY:
                query.pop(key, None)
            ssl = query.pop("ssl", None)
            if ssl is not None:
                mode = "require" if ssl in ("true", "True", "1") else ssl
                if mode not in _SSLMODES:
                    raise ConfigurationError(f"ssl={ssl!r}: use one of {', '.join(_SSLMODES)}.")
                query.setdefault("sslmode", mode)
        elif driver not in ("psycopg", "psycopg_async", "psycopg2", ""):
            raise ConfigurationError(
                f"postgresql+{driver}: Countersign reaches PostgreSQL "
                "through psycopg 3; use asyncpg or psycopg URLs."
            )
        converted = parsed.set(drivername="postgresql+psycopg", query=query)
    elif backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or "mode=memory" in str(parsed):
            raise ConfigurationError(
                "An in-memory SQLite database lives in one connection only; Countersign's "
                "runners need a file: sqlite+aiosqlite:///path/to/file.db."
            )
        converted = parsed.set(drivername="sqlite")
    else:
        raise ConfigurationError(f"{backend}: Countersign runs on PostgreSQL or SQLite.")
    return converted.render_as_string(hide_password=False)


def url_of(db_session: Any) -> str:
    """The async URL behind an ``AsyncSession``, ``AsyncEngine``, ``URL`` or string."""
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

    if isinstance(db_session, AsyncSession):
        bind = db_session.bind
        if bind is None:
            raise ConfigurationError(
                "The AsyncSession is bound to no engine; create it from "
                "an async engine (async_sessionmaker(engine))."
            )
        engine = bind.engine if isinstance(bind, AsyncConnection) else bind
        return engine.url.render_as_string(hide_password=False)
    if isinstance(db_session, AsyncEngine):
        return db_session.url.render_as_string(hide_password=False)
    if isinstance(db_session, URL):
        return db_session.render_as_string(hide_password=False)
    if isinstance(db_session, str):
        return db_session
    raise ConfigurationError(
        f"db_session must be an AsyncSession, an AsyncEngine or a database URL, not "
        f"{type(db_session).__name__}."
    )


def database_for(db_session: Any = None, *, migrate: bool = True) -> Database:
    """The process-wide synchronous Database for ``db_session`` (default: settings).

    With ``migrate`` its schema is brought to the newest migration once per
    process, as the dashboard and runners do when they start.
    """
    from core.store.db import Database, get_database

    if isinstance(db_session, Database):
        db = db_session
    else:
        db = get_database(sync_url(url_of(db_session)) if db_session is not None else None)
    if migrate:
        ensure_schema(db)
    return db


def ensure_schema(db: Database) -> None:
    """Migrate ``db`` to the newest revision, once per process and database."""
    with _checked_lock:
        if db.url in _checked:
            return
        from core.store.migrate import current_revision, head_revision

        if current_revision(db) != head_revision(db):
            db.upgrade()
        _checked.add(db.url)


__all__ = ["database_for", "ensure_schema", "sync_url", "url_of"]
