"""The gateway the security tests attack, over the test's database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from core.store.db import Database
from gateway.app import create_app


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, approver_ui=False)) as test_client:
        yield test_client
