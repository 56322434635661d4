"""schemathesis against the gateway's OpenAPI document, in process (ASGI), with a
valid API token and a bounded number of examples per operation, on SQLite and
PostgreSQL: no server errors, and every response matches the document."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from core.store.db import Database
from gateway.app import create_app
from tests.integration.gateway.conftest import token_for, waiting_workflow

MAX_EXAMPLES = 20


@pytest.fixture
def auth(db: Database) -> dict[str, str]:
    return token_for(db, "fuzzer@example.com", role="admin")


@pytest.fixture
def gateway_schema(db: Database, auth: dict[str, str]) -> Any:
    waiting_workflow(db)  # something to list, read and refuse
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(db, approver_ui=False))


schema = schemathesis.pytest.from_fixture("gateway_schema")


@schemathesis.check
def refusal_has_a_message(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx says why (the reliability suite's "every refusal with a message")."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and body.get("message"), (response.status_code, response.text[:200])


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any, auth: dict[str, str]) -> None:
    case.call_and_validate(
        headers=auth,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            refusal_has_a_message,
        ],
    )
