"""core.engine.pipelined on PostgreSQL: a statement and its COMMIT in one round trip,
all or nothing, whether a transaction was open before it (explicit COMMIT) or not
(autocommit: the pipeline's Sync ends the implicit transaction); the connection goes
back to the pool as it came (never in autocommit)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.engine.pipelined import execute_and_commit
from core.store.db import Database

RENAME = "UPDATE pipelined_probe SET v = %(v)s WHERE id = 1"


@pytest.fixture
def probe(pg_db: Database) -> Iterator[Database]:
    with pg_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE pipelined_probe (id int PRIMARY KEY, v int NOT NULL)"))
        conn.execute(text("INSERT INTO pipelined_probe VALUES (1, 0)"))
    yield pg_db


def value(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT v FROM pipelined_probe WHERE id = 1")).scalar_one())


def driver_of(conn: object) -> object:
    return conn.connection.driver_connection  # type: ignore[attr-defined]


@pytest.mark.parametrize("opened", [False, True], ids=["implicit", "explicit"])
def test_the_statements_commit_together_or_not_at_all(probe: Database, opened: bool) -> None:
    with probe.runner_engine.connect() as conn, conn.begin():
        if opened:  # a locking read first, as the paths without a known head do
            conn.exec_driver_sql("SELECT 1 FROM pipelined_probe WHERE id = 1 FOR UPDATE")
        rows = execute_and_commit(conn, "SELECT v FROM pipelined_probe", {}, before=[(RENAME, {"v": 1})])
    assert rows == [(1,)] and value(probe) == 1

    with pytest.raises(DBAPIError, match="division by zero"):
        with probe.runner_engine.connect() as conn, conn.begin():
            if opened:
                conn.exec_driver_sql("SELECT 1 FROM pipelined_probe WHERE id = 1 FOR UPDATE")
            execute_and_commit(conn, "SELECT 1 / 0", {}, before=[(RENAME, {"v": 2})])
    assert value(probe) == 1  # the write before the failing statement was not kept

    # Every pooled connection is back out of autocommit: its next user gets a transaction.
    with probe.runner_engine.connect() as conn:
        assert driver_of(conn).autocommit is False  # type: ignore[attr-defined]
        conn.exec_driver_sql("UPDATE pipelined_probe SET v = 3 WHERE id = 1")
        conn.rollback()
    assert value(probe) == 1


def test_a_statement_after_the_lock_sees_what_was_committed_while_it_waited(probe: Database) -> None:
    """The lock and the statement run in one implicit transaction, each with its own
    snapshot: the statement reads what the lock's holder committed before letting go."""
    import threading

    holder = probe.engine.connect()
    holder.exec_driver_sql("SELECT 1 FROM pipelined_probe WHERE id = 1 FOR UPDATE")
    result: list[list[tuple[object, ...]]] = []

    def runner() -> None:
        with probe.runner_engine.connect() as conn, conn.begin():
            result.append(
                execute_and_commit(
                    conn,
                    "SELECT v FROM pipelined_probe WHERE id = 1",
                    {},
                    before=[("SELECT 1 FROM pipelined_probe WHERE id = 1 FOR UPDATE", {})],
                )
            )

    thread = threading.Thread(target=runner)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive()  # waiting for the lock
    holder.exec_driver_sql("UPDATE pipelined_probe SET v = 42 WHERE id = 1")
    holder.commit()
    holder.close()
    thread.join(10)
    assert result == [[(42,)]]


def test_a_commit_without_flush_holds_for_its_transaction_only_and_warns_nothing(probe: Database) -> None:
    notices: list[str] = []
    with probe.runner_engine.connect() as conn, conn.begin():
        driver = driver_of(conn)
        driver.add_notice_handler(lambda d: notices.append(str(d.message_primary)))  # type: ignore[attr-defined]
        rows = execute_and_commit(conn, "SELECT current_setting('synchronous_commit')", {}, durable=False)
        after = driver.execute("SELECT current_setting('synchronous_commit')").fetchone()  # type: ignore[attr-defined]
        driver.rollback()  # type: ignore[attr-defined]
    assert rows == [("off",)] and after == ("on",)
    assert notices == []
