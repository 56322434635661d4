"""Database access: engines, sessions, migrations and error translation.

SQLite (the embedded default) runs in WAL mode and starts every writing
transaction with ``BEGIN IMMEDIATE`` so that two writers queue on the
busy timeout instead of failing when a read lock would have to be upgraded.
PostgreSQL is reached through psycopg 3.

The ORM is imported when a database first makes a session: a reader that needs
only Core queries (``read_connection``: the CLI's listings) never loads it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from core.base.errors import DatabaseError, LoneSurrogate, NulCharacter
from core.base.storable import NUL, unsendable_character
from core.store.wakeup import Wakeup, make_wakeup

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_POOL_SIZE = 10
PG_CONNECT_TIMEOUT_SECONDS = 10


def normalise_url(url: str) -> str:
    """Accept the URL spellings people paste and pick our drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Database:
    """One database: its engine, session factory and wake-up channel."""

    def __init__(self, url: str, *, create_dirs: bool = True) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            db_path = parsed.database
            if create_dirs and db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                self.url,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _configure_sqlite(self.engine)
            _refuse_unsendable_parameters(self.engine, nul=False)
        else:
            # pool_pre_ping: a connection the server dropped (restart, failover)
            # is noticed at checkout and replaced, so callers recover without
            # a process restart; the connect timeout bounds a hang while the
            # server is unreachable.
            self.engine = create_engine(
                self.url,
                pool_size=PG_POOL_SIZE,
                max_overflow=20,
                pool_pre_ping=True,
                connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS},
            )
            _refuse_unsendable_parameters(self.engine)
            # The runner's per-step transactions (claim, step, outcome, release)
            # skip the pre-ping, a round trip per step: after a server restart
            # the first statement on a dropped connection fails as a database
            # outage, which the runner already waits out (the outcome's commit
            # is retried, a claim or a start is tried again), and the pool is
            # refreshed. Its connections are opened only when used.
            self.runner_engine: Engine = create_engine(
                self.url,
                pool_size=PG_POOL_SIZE,
                max_overflow=20,
                pool_pre_ping=False,
                connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS},
            )
            _refuse_unsendable_parameters(self.runner_engine)
        if self.dialect == "sqlite":
            self.runner_engine = self.engine
        read_options: dict[str, Any] = {"countersign_readonly": True}
        if self.dialect != "sqlite":
            # Reads run outside a transaction: at READ COMMITTED every statement takes
            # its own snapshot either way, so a read sees what it would inside one,
            # and closing the session costs no ROLLBACK round trip. Nothing is
            # flushed from a read session (autoflush off), so nothing it holds is
            # ever written.
            read_options["isolation_level"] = "AUTOCOMMIT"
        self._read_engine = self.engine.execution_options(**read_options)
        # The runner's reads between steps (its idle probe): as ``read``, without the
        # pre-ping (see the runner's engine above), so one statement is one round trip.
        self._runner_read_engine = self.runner_engine.execution_options(**read_options)
        self._factories: _SessionFactories | None = None
        self._factories_lock = threading.Lock()
        self.wakeup: Wakeup = make_wakeup(self)

    def _sessions(self) -> _SessionFactories:
        """The ORM's session factories, made (and the ORM imported) on first use."""
        if self._factories is None:
            with self._factories_lock:
                if self._factories is None:
                    self._factories = _SessionFactories(self)
        return self._factories

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A writing transaction: committed on success, rolled back on error.

        Database failures leave as ``DatabaseError`` (integrity errors are left
        to the caller, which knows what they mean, via ``translate``).
        """
        with _transaction(self._sessions().writing) as session:
            yield session

    @contextlib.contextmanager
    def runner_session(self) -> Iterator[Session]:
        """``session()`` for the runner's per-step transactions (no pre-ping; see above)."""
        with _transaction(self._sessions().runner_writing) as session:
            yield session

    @property
    def engines(self) -> list[Engine]:
        """Every engine this database uses (one on SQLite; the runner's own on PostgreSQL)."""
        return [self.engine] if self.runner_engine is self.engine else [self.engine, self.runner_engine]

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (on SQLite it takes no write lock)."""
        # Closing (not rolling back) detaches the objects read with their
        # loaded attributes intact, so callers may use them afterwards.
        with self._sessions().reading() as session:
            yield session

    @contextlib.contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """``read()`` as a Core connection, without the ORM: for readers whose queries
        are Core statements on ``core.store.schema`` (the CLI's listings)."""
        with self._read_engine.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def runner_read(self) -> Iterator[Session]:
        """``read()`` for the runner's own reads: no pre-ping (a dropped connection fails
        as a database outage, which the runner waits out), so no extra round trip."""
        with self._sessions().runner_reading() as session:
            yield session

    def notify_runnable(self, session: Session, workflow_id: str) -> None:
        """Wake runners once ``session`` commits: a workflow became runnable.

        Called only when a workflow becomes runnable, never on every write,
        because NOTIFY inside every transaction serialises commits.
        """
        self.wakeup.notify_on_commit(session, workflow_id)

    def commit_without_flush(self, session: Session) -> None:
        """Let ``session``'s commit return before its WAL is on disk (PostgreSQL).

        Only for writes whose loss in a server crash is harmless: taking or
        letting go of a lease (a lost lease lapses or is taken again, and the
        holder's next write checks it). Visibility to others is unchanged,
        and the next durable commit flushes this one too. Saves an fsync per
        claim, which is on the path from a decision to the resumed step.
        """
        if self.is_postgres:
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (Alembic is imported only if
        the database is not there yet: ``core.store.schema_version``)."""
        from core.store.schema_version import at_newest_revision

        if at_newest_revision(self.engine):
            return
        from core.store.migrate import upgrade

        upgrade(self)

    def table_names(self) -> list[str]:
        return inspect(self.engine).get_table_names()

    def dispose(self) -> None:
        self.wakeup.close()
        self.engine.dispose()
        if self.runner_engine is not self.engine:
            self.runner_engine.dispose()


class _SessionFactories:
    """A database's ORM session factories: writing, the runner's writing, reading and
    the runner's reading (see ``Database``). Made on a database's first session."""

    def __init__(self, db: Database) -> None:
        from sqlalchemy.orm import sessionmaker

        info = {"countersign_db": db}
        self.writing: sessionmaker[Session] = sessionmaker(db.engine, expire_on_commit=False, info=info)
        self.runner_writing: sessionmaker[Session] = sessionmaker(
            db.runner_engine, expire_on_commit=False, info=info
        )
        self.reading: sessionmaker[Session] = sessionmaker(
            db._read_engine, expire_on_commit=False, autoflush=False, info=info
        )
        self.runner_reading: sessionmaker[Session] = sessionmaker(
            db._runner_read_engine, expire_on_commit=False, autoflush=False, info=info
        )
        db.wakeup.listen_for_commits()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("countersign_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _refuse_unsendable_parameters(engine: Engine, *, nul: bool = True) -> None:
    """PostgreSQL cannot take a NUL character in text, not even to compare:
    a lookup or filter holding one is refused by name here instead of failing
    in the driver (``nul``). (Nothing stored holds one: core.base.storable refuses
    it on the way in, and SQLite, which could, simply finds nothing.) Neither
    driver can encode a lone surrogate: refused by name on both."""

    @event.listens_for(engine, "before_cursor_execute")
    def _check(
        _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _executemany: bool
    ) -> None:
        if parameters and (found := unsendable_character(parameters, nul=nul)) is not None:
            raise NulCharacter if found == NUL else LoneSurrogate


def translate(exc: SQLAlchemyError) -> DatabaseError:
    """Turn a driver error into our DatabaseError with a plain message."""
    if isinstance(exc, IntegrityError):
        return DatabaseError(f"The database refused a conflicting write: {exc.orig}")
    if isinstance(exc, OperationalError | DBAPIError):
        return DatabaseError(f"The database is unavailable or failed: {exc.orig}")
    return DatabaseError(f"Database error: {exc}")


def database_of(session: Session) -> Database:
    """The Database a session came from."""
    db: Database | None = session.info.get("countersign_db")
    if db is None:
        raise RuntimeError("session was not made by core.store.db.Database")
    return db


_default_lock = threading.Lock()
_default: dict[str, Database] = {}


def get_database(url: str | None = None) -> Database:
    """The process-wide Database for ``url`` (default: DATABASE_URL, else settings)."""
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        from core.base.config import get_settings  # pydantic-settings: only when it is needed

        url = get_settings().database_url
    url = normalise_url(url)
    with _default_lock:
        db = _default.get(url)
        if db is None:
            db = _default[url] = Database(url)
        return db


@contextlib.contextmanager
def _transaction(factory: Callable[[], Session]) -> Iterator[Session]:
    """A session from ``factory``: committed on success, rolled back on any error."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
