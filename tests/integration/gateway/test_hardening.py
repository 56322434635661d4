"""No gateway page can be framed or sniffed: every response carries the headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.db import Database
from gateway.app import create_app


@pytest.mark.parametrize("path", ["/healthz", "/approve/", "/email/confirm?token=x", "/api/me",
                                  "/openapi.json", "/no-such-page"])
def test_every_response_refuses_framing(sqlite_db: Database, path: str) -> None:
    with TestClient(create_app(sqlite_db)) as client:
        response = client.get(path)
    assert response.headers["x-frame-options"] == "DENY", path
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_api_docs_work_offline(sqlite_db: Database) -> None:
    with TestClient(create_app(sqlite_db, approver_ui=False)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower() and "https://" not in page.text
        assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
        assert client.get("/static/swagger-ui/swagger-ui.css").status_code == 200
