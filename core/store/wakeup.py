"""Waking runners when a workflow becomes runnable.

In-process, a ``Signal`` (a condition with a generation counter) wakes every
runner thread at once. On PostgreSQL, writers also ``pg_notify`` inside the
transaction that made a workflow runnable (delivered at commit), and one
listener thread per process turns notifications into the same signal, so a
runner on another machine wakes within milliseconds. On SQLite, runners in
other processes fall back to a short poll.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import event, text

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database

CHANNEL = "countersign_runnable"
LISTEN_RECONNECT_SECONDS = 1.0
LISTEN_CONNECT_TIMEOUT_SECONDS = 10


class Signal:
    """A broadcast wake-up that cannot be missed between a check and a wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.generation = 0

    def fire(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait_for_change(self, seen: int, timeout: float) -> bool:
        """Block until the generation differs from ``seen``; True if it did."""
        with self._cond:
            return self._cond.wait_for(lambda: self.generation != seen, timeout)


class Wakeup:
    """Wake-up channel of one database (SQLite flavour: in-process only)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.signal = Signal()
        self._listening = False

    def listen_for_commits(self) -> None:
        """Watch ORM commits for the wake-ups asked of them (``wake_on_commit``); called
        when the database makes its session factories, before its first session, so a
        reader that never makes one never imports the ORM."""
        from sqlalchemy.orm import Session

        if not self._listening:
            event.listen(Session, "after_commit", self._after_commit)
            self._listening = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(("countersign_wake", id(self)), None):
            self.signal.fire()

    def notify_on_commit(self, session: Session, workflow_id: str) -> None:
        self.wake_on_commit(session)

    def wake_on_commit(self, session: Session) -> None:
        """Wake this process's runners once ``session`` commits (the in-process part of
        ``notify_on_commit``, for a writer whose statement notifies other processes)."""
        session.info[("countersign_wake", id(self))] = True

    def start_listening(self) -> None:
        """Subscribe to wake-ups from other processes, where the database can."""

    def close(self) -> None:
        if self._listening:
            from sqlalchemy.orm import Session

            event.remove(Session, "after_commit", self._after_commit)
            self._listening = False


class PostgresWakeup(Wakeup):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.connected = threading.Event()

    def notify_on_commit(self, session: Session, workflow_id: str) -> None:
        super().notify_on_commit(session, workflow_id)
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": workflow_id}
        )

    def start_listening(self) -> None:
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen_forever, name="countersign-listen", daemon=True
                )
                self._listener.start()
        self.connected.wait(5)

    def _listen_forever(self) -> None:
        import psycopg

        conninfo = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    conninfo, autocommit=True, connect_timeout=LISTEN_CONNECT_TIMEOUT_SECONDS
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    # A notification may have been missed while disconnected.
                    self.signal.fire()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.signal.fire()
            except Exception as exc:  # noqa: BLE001 - any failure: the server went away, reconnect
                self.connected.clear()
                import structlog  # here: a process that never listens never pays for it

                structlog.get_logger(__name__).warning("listen connection lost; reconnecting", error=str(exc))
                time.sleep(LISTEN_RECONNECT_SECONDS)

    def close(self) -> None:
        self._stop.set()
        super().close()


def make_wakeup(db: Database) -> Wakeup:
    if db.is_postgres:
        return PostgresWakeup(db)
    return Wakeup(db)
