"""PostgreSQL: one statement sent with its COMMIT, in one round trip (psycopg's pipeline).

Only for a statement that writes all or nothing by itself: one whose every
condition is checked inside it (a single UPDATE, or data-modifying CTEs whose
first one checks everything and the others only follow it), so committing it
without looking at its result first is safe. The runner's hot path
(``core.engine.step_path``) sends its step and finish statements this way, and
the batch claim (``core.engine.claim_queue``) its UPDATE of leases.

When nothing ran on the connection before (no transaction open: a step or a
finish whose head was known, a claim), the statements go out in autocommit
mode and the pipeline's Sync ends them: PostgreSQL runs the statements between
two Syncs as one implicit transaction, committed at the Sync, or rolled back
whole if one fails. That sends no BEGIN and no COMMIT: about half the
client's CPU and a third of the wall time of the explicit form
(``bench/README.md``). Each statement still takes its own snapshot, so a
statement after a lock sees what was committed before the lock was granted.
When a transaction is open (a locking read came first), the statement is sent
with an explicit COMMIT instead.

The statement goes through the engine's cursor events like any other (the NUL
guard, the statement counters of the tests); a driver error leaves as
SQLAlchemy's, as it would from ``conn.execute``; a broken connection is
invalidated. The transaction has ended when ``execute_and_commit`` returns
(SQLAlchemy's own COMMIT after it finds nothing to commit).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

__all__ = ["execute_and_commit"]

# SET LOCAL as a function: it also holds in an implicit transaction, without SET LOCAL's
# warning that it is outside a transaction block.
_NOT_DURABLE = "SELECT set_config('synchronous_commit', 'off', true)"


def execute_and_commit(
    conn: Connection,
    sql: str,
    params: dict[str, Any],
    *,
    jsonb: Collection[str] = (),
    durable: bool = True,
    before: Sequence[tuple[str, dict[str, Any]]] = (),
) -> list[tuple[Any, ...]]:
    """Run ``sql`` (psycopg's ``%(name)s`` style) and COMMIT, in one round trip: its rows.

    ``jsonb`` names the parameters sent as JSONB. ``durable=False`` lets the
    commit return before its WAL is on disk (``Database.commit_without_flush``:
    only for a lease taken or let go). ``before``: statements run first in the same
    pipeline, their rows unread (a lock: ``sql`` then runs in a snapshot taken
    after it was granted)."""
    import psycopg  # PostgreSQL only: not imported for an SQLite database
    from psycopg.types.json import Jsonb

    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    bound = {name: Jsonb(value) if name in jsonb else value for name, value in params.items()}
    # What a listener may annotate, as it would SQLAlchemy's execution context.
    context = SimpleNamespace(statement=sql, parameters=params)
    # Nothing open: the pipeline's Sync ends the implicit transaction (see the docstring).
    implicit = driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    was_autocommit = driver.autocommit
    with driver.cursor() as cursor:
        conn.dispatch.before_cursor_execute(conn, cursor, sql, params, context, False)
        try:
            if implicit:
                driver.autocommit = True
            with driver.pipeline():
                if not durable:
                    driver.execute(_NOT_DURABLE)
                for statement, values in before:
                    driver.execute(statement, values)
                cursor.execute(sql, bound)
                if not implicit:
                    driver.commit()
            # The result's status, not ``description`` (which builds a column list).
            result = cursor.pgresult
            rows = (
                cursor.fetchall()
                if result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK
                else []
            )
        except psycopg.Error as exc:
            if driver.broken:
                conn.invalidate(exc)
            raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc
        finally:
            if implicit:
                try:
                    driver.autocommit = was_autocommit
                except psycopg.Error as exc:
                    # Never back to the pool in autocommit: its next user expects a transaction.
                    conn.invalidate(exc)
        conn.dispatch.after_cursor_execute(conn, cursor, sql, params, context, False)
    return [tuple(row) for row in rows]
