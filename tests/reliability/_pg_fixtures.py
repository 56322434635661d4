"""Fixtures over a private PostgreSQL cluster (tests/private_postgres.py).

Import them into a test module (``from tests.reliability._pg_fixtures import
private_cluster, private_pg_url``). The cluster is made once per test process
(initdb costs seconds) and deleted when the process exits; every test gets
a fresh migrated database in it, and finds the server running again after
the test even if it stopped it.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator

import pytest

from tests.private_postgres import PrivateCluster, unavailable_reason

_lock = threading.Lock()
_cluster: list[PrivateCluster] = []


def _shared_cluster() -> PrivateCluster:
    with _lock:
        if not _cluster:
            cluster = PrivateCluster.create()
            atexit.register(cluster.destroy)
            _cluster.append(cluster)
        return _cluster[0]


@pytest.fixture(scope="session")
def private_cluster() -> PrivateCluster:
    """This test process's own PostgreSQL server; tests may stop and restart it."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"a private PostgreSQL cluster is required in CI: {reason}")
        pytest.skip(f"no private PostgreSQL cluster: {reason}")
    return _shared_cluster()


@pytest.fixture
def private_pg_url(private_cluster: PrivateCluster) -> Iterator[str]:
    """URL of a fresh, migrated database in the private cluster."""
    if not private_cluster.is_running():
        private_cluster.start()
    url = private_cluster.create_database()
    yield url
    if not private_cluster.is_running():
        private_cluster.start()
    private_cluster.drop_database(url.rsplit("/", 1)[1])
