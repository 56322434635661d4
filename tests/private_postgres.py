"""A private PostgreSQL cluster for tests that stop or restart the server.

The shared server at 127.0.0.1:5432 is used by other tests in parallel and
must never be restarted; these tests ``initdb`` their own cluster in a
temporary directory instead and start it with ``pg_ctl`` on a free loopback
port (``listen_addresses=127.0.0.1``, its Unix socket inside the directory).

    cluster = PrivateCluster.create()        # initdb + start (a few seconds)
    url = cluster.create_database()          # a fresh, migrated database
    cluster.restart()                        # pg_ctl stop -m fast, then start
    cluster.stop(); cluster.start()          # a longer outage, under the test's control
    cluster.destroy()                        # stop and delete the directory

Running as root, the server runs as the ``postgres`` OS user (``runuser``),
which owns the directory. ``unavailable_reason()`` says why a cluster
cannot be made here (no initdb, no postgres user); tests skip with it,
except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from core.store.db import Database

POSTGRES_USER = "postgres"
# Seconds pg_ctl waits for the server to start or stop.
PG_CTL_WAIT_SECONDS = 60
# Settings for a throwaway cluster: no durability work, small, loopback only.
SERVER_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "60",
    "log_min_messages": "warning",
}


def _binary(name: str) -> str | None:
    """The newest ``/usr/lib/postgresql/<version>/bin/<name>``, else one on PATH."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return found[-1] if found else shutil.which(name)


def _running_as_root() -> bool:
    return os.geteuid() == 0


def unavailable_reason() -> str | None:
    """Why no private cluster can be made on this machine, or None."""
    for name in ("initdb", "pg_ctl"):
        if _binary(name) is None:
            return f"{name} is not installed (apt-get install postgresql)"
    if _running_as_root():
        try:
            pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            return f"running as root and there is no {POSTGRES_USER!r} OS user to run the server"
        if shutil.which("runuser") is None:
            return "running as root and runuser is not installed"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivateCluster:
    """One initdb'ed cluster: its directory, port, and start/stop/restart."""

    base: Path
    port: int
    _template: str | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "socket"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    # -- life -------------------------------------------------------------------

    @classmethod
    def create(cls, parent: Path | None = None) -> PrivateCluster:
        """initdb a cluster in a new temporary directory and start it."""
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"cannot make a private PostgreSQL cluster: {reason}")
        base = Path(tempfile.mkdtemp(prefix="countersign-pg-", dir=parent))
        cluster = cls(base=base, port=free_port())
        cluster.socket_dir.mkdir()
        if _running_as_root():
            entry = pwd.getpwnam(POSTGRES_USER)
            for path in (base, cluster.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        try:
            cluster._run(
                "initdb",
                "-D",
                str(cluster.data_dir),
                "-A",
                "trust",
                "-U",
                POSTGRES_USER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
            cluster.start()
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise
        return cluster

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.socket_dir}",
                *(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items()),
            ]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(PG_CTL_WAIT_SECONDS),
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions, close every connection)."""
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(PG_CTL_WAIT_SECONDS), "stop"
        )

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the server comes back."""
        self.stop(mode)
        self.start()

    def is_running(self) -> bool:
        result = subprocess.run(
            self._command("pg_ctl", "-D", str(self.data_dir), "status"),
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode == 0

    def destroy(self) -> None:
        """Stop the server if it runs and delete the cluster's directory."""
        try:
            if self.is_running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- databases ----------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of a database in this cluster (psycopg 3, loopback TCP)."""
        return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        """A plain autocommit connection (for admin statements and checks)."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=POSTGRES_USER,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, name: str | None = None) -> str:
        """A fresh database migrated to head (cloned from a template made once); its URL."""
        if self._template is None:
            template = f"cs_tpl_{uuid.uuid4().hex[:8]}"
            with self.connect() as conn:
                conn.execute(f'CREATE DATABASE "{template}"')
            db = Database(self.url(template))
            try:
                db.upgrade()
            finally:
                db.dispose()
            self._template = template
        name = name or f"cs_{uuid.uuid4().hex[:12]}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- helpers ------------------------------------------------------------------

    def _command(self, binary: str, *args: str) -> list[str]:
        path = _binary(binary)
        assert path is not None
        command = [path, *args]
        if _running_as_root():
            command = ["runuser", "-u", POSTGRES_USER, "--", *command]
        return command

    def _run(self, binary: str, *args: str) -> None:
        result = subprocess.run(
            self._command(binary, *args), capture_output=True, text=True, check=False, cwd=self.base
        )
        if result.returncode != 0:
            server_log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(
                f"{binary} {' '.join(args[-1:])} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{server_log}"
            )
