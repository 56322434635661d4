"""No gateway page can be framed or sniffed: every response carries the headers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.store.db import Database
from gateway.app import create_app


@pytest.mark.parametrize(
    "path", ["/healthz", "/approve/", "/email/confirm?token=x", "/api/me", "/openapi.json", "/no-such-page"]
)
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
        assert client.get("/static/api-docs/swagger-ui-bundle.js").status_code == 200
        assert client.get("/static/api-docs/swagger-ui.css").status_code == 200
        redoc = client.get("/redoc")
        assert redoc.status_code == 200
        assert "cdn" not in redoc.text.lower() and "https://" not in redoc.text
        assert client.get("/static/api-docs/redoc.standalone.js").status_code == 200


def test_rest_refuses_a_tool_the_runners_do_not_have(sqlite_db: Database) -> None:
    from core.engine.tools import ToolRegistry
    from tests.integration.gateway.conftest import token_for

    registry = ToolRegistry()
    registry.add("known", lambda: {})
    app = create_app(sqlite_db, approver_ui=False)
    app.state.tools = registry  # what create_app() sets after loading the runners' modules
    headers = token_for(sqlite_db, "agent@example.com")
    with TestClient(app) as client:

        def start(tool: str) -> Any:
            return client.post(
                "/api/workflows",
                headers=headers,
                json={"definition": {"name": "t", "steps": [{"name": "s", "type": "tool", "tool": tool}]}},
            )

        refused = start("unknown_tool")
        assert refused.status_code == 422
        assert "steps[0].tool: no tool is registered as 'unknown_tool'" in refused.text
        assert start("known").status_code == 201
