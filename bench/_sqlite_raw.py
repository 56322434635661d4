"""pgbench's -N transaction in a plain sqlite3 loop: the SQLite reference.

A module of its own that imports only the standard library, so the processes
bench/engine.py spawns for it start at once.
"""

from __future__ import annotations

import random
import sqlite3
import time
from typing import Any

ACCOUNTS = 100_000


def prepare(path: str) -> None:
    """pgbench's accounts and history tables, WAL on (the engine's pragmas)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE accounts (aid INTEGER PRIMARY KEY, bid INT, abalance INT, filler TEXT)")
    conn.execute("CREATE TABLE history (tid INT, bid INT, aid INT, delta INT, mtime TIMESTAMP, filler TEXT)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO accounts VALUES (?, 1, 0, '')", ((i,) for i in range(1, ACCOUNTS + 1)))
    conn.execute("COMMIT")
    conn.close()


def client(path: str, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """Run -N transactions for ``seconds`` once ``go`` is set; put the count in ``out``."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    ready.release()
    go.wait()
    done, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        aid = random.randint(1, ACCOUNTS)
        delta = random.randint(-5000, 5000)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE accounts SET abalance = abalance + ? WHERE aid = ?", (delta, aid))
        conn.execute("SELECT abalance FROM accounts WHERE aid = ?", (aid,)).fetchone()
        conn.execute(
            "INSERT INTO history (tid, bid, aid, delta, mtime) VALUES (1, 1, ?, ?, CURRENT_TIMESTAMP)",
            (aid, delta),
        )
        conn.execute("COMMIT")
        done += 1
    conn.close()
    out.put(done)
