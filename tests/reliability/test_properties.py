"""Property tests (hypothesis) over what people and agents send: workflow
definitions, answers to approval forms, REST payloads.

- Any JSON-like value given as a definition is either a valid definition
  (whose normalised form parses to itself) or a ``DefinitionError`` listing
  problems by path; nothing else is raised, and a refused workflow leaves no
  row behind.
- Any answer to any approval the engine accepted to open is either recorded
  or refused with a named ``CountersignError`` and no vote.
- Any body sent to the REST API's write operations gets a response below 500,
  and every refusal carries a message.

Schemathesis walks the OpenAPI document itself (tests/integration/gateway/
test_schemathesis.py); these go beyond the document: bodies that are not the
declared shape, numbers JSON cannot carry, control characters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.approvals.engine import ApprovalEngine
from core.base.errors import CountersignError, DefinitionError, InvalidInput, InvalidResponse
from core.definitions.definition_text import load_definition_text
from core.definitions.workflow import definition_dict, parse_definition
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalResponse, Workflow
from gateway.app import create_app
from tests.integration.gateway.conftest import BOSS, token_for, waiting_workflow

EXAMPLES = 200
DB_EXAMPLES = 60  # each example writes to the database
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DB_SETTINGS = settings(SETTINGS, max_examples=DB_EXAMPLES)

# -- strategies -------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "name",
        "type",
        "steps",
        "tool",
        "args",
        "task",
        "approval_config",
        "requested_from",
        "title",
        "approval_type",
        "form_fields",
        "schema",
        "levels",
        "timeout",
        "on_timeout",
        "escalate_to",
        "retry",
        "attempts",
        "backoff",
        "on_reject",
        "compensate",
        "create_checkpoint",
        "context",
        "context_data",
        "amount",
        "approval_threshold",
        "required",
        "min_amount",
        "approvers",
        "threshold",
        "requires_approval",
        "agent",
        "plan",
        "channels",
        "description",
        "version",
        "metadata",
    ]
) | st.text(max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "approval",
            "tool",
            "task",
            "checkpoint",
            "form",
            "budget",
            "binary",
            "goto:a",
            "skip",
            "fail",
            "15m",
            "PT1H",
            "-1s",
            "0",
            "${input.x}",
            "string",
            "number",
            "escalate",
            "a@example.com",
            "admins",
        ]
    )
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


@st.composite
def near_valid_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid-looking definition with some fields replaced by anything."""
    steps: list[Any] = [
        {"name": "a", "type": "tool", "tool": "do", "args": {"x": "${input.x}"}},
        {
            "name": "b",
            "type": "approval",
            "approval_config": {
                "type": draw(st.sampled_from(["binary", "form", "budget"])),
                "requested_from": "a@example.com",
                "form_fields": [{"name": "f", "type": "string", "required": True}],
                "context_data": {"amount": draw(SCALARS)},
                "timeout": draw(SCALARS),
            },
        },
        {"name": "c", "type": "checkpoint", "on_reject": draw(SCALARS)},
    ]
    for _ in range(draw(st.integers(0, 4))):
        step = draw(st.sampled_from(steps))
        config = step.get("approval_config") if isinstance(step, dict) else None
        target = config if isinstance(config, dict) else step  # an earlier draw may replace it
        target[draw(KEYS)] = draw(JSONISH)
    if draw(st.booleans()):
        steps.append(draw(JSONISH))
    return {"name": draw(st.text(max_size=20)), "steps": steps}


DEFINITIONS = JSONISH | near_valid_definitions()


def assert_named_problems(error: DefinitionError) -> None:
    assert error.problems and all(isinstance(p, str) and ": " in p for p in error.problems), error.problems
    assert str(error).startswith("The workflow definition is invalid: ")


# -- definitions ------------------------------------------------------------------------------


@SETTINGS
@given(data=DEFINITIONS)
@example(data={"steps": [{"name": ["a list"], "type": "tool", "tool": "t"}]})  # crashed with TypeError
@example(data={"steps": [{"name": "a", "type": "tool", "tool": "t", "on_reject": {"goto": ["b"]}}]})
@example(data={"steps": [{"name": "a", "type": "tool", "tool": "t", "args": {"x": float("nan")}}]})
def test_any_value_is_a_definition_or_a_definition_error(data: Any) -> None:
    try:
        definition = parse_definition(data)
    except DefinitionError as error:
        assert_named_problems(error)
        return
    normalised = definition_dict(definition)
    assert definition_dict(parse_definition(json.loads(json.dumps(normalised)))) == normalised


@SETTINGS
@given(text=st.text(max_size=300) | DEFINITIONS.map(lambda d: json.dumps(d, allow_nan=True)))
def test_any_text_is_a_definition_or_a_definition_error(text: str) -> None:
    try:
        load_definition_text(text)
    except DefinitionError as error:
        assert_named_problems(error)


def workflow_count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Workflow)) or 0


@DB_SETTINGS
@given(data=DEFINITIONS, input_data=st.dictionaries(st.text(max_size=8), JSONISH, max_size=3))
def test_a_refused_workflow_leaves_nothing_behind(
    db: Database, data: Any, input_data: dict[str, Any]
) -> None:
    add_user(db, "agent@example.com", role="service")  # may start: only the data decides
    before = workflow_count(db)
    try:
        ops.create_workflow(db, data, input_data=input_data, created_by="agent@example.com")
    except CountersignError as error:
        assert str(error)
        assert workflow_count(db) == before
        return
    assert workflow_count(db) == before + 1


def test_values_postgresql_cannot_store_are_refused_by_name_on_both_databases(db: Database) -> None:
    """NUL characters and NaN/Infinity: PostgreSQL's driver refused them with a DataError."""
    config = {"requested_from": BOSS, "channels": []}
    steps = [{"name": "gate", "type": "approval", "approval_config": config}]
    with pytest.raises(InvalidInput, match=r"input\.note: contains a NUL character"):
        ops.create_workflow(db, {"steps": steps}, input_data={"note": "a\x00b"})
    with pytest.raises(InvalidInput, match=r"input\.amount\[0\]: inf is not a JSON number"):
        ops.create_workflow(db, {"steps": steps}, input_data={"amount": [math.inf]})
    with pytest.raises(DefinitionError, match=r"steps\[0\]\.approval_config\.title: contains a NUL"):
        parse_definition({"steps": [{**steps[0], "approval_config": {"title": "\x00"}}]})
    assert workflow_count(db) == 0
    approval = ApprovalEngine(db).request_approval(None, "Check", config=config)
    for data, comment, problem in (
        ({"x": "\x00"}, "", "data.x"),
        ({}, "\x00", "comment"),
        ({"x": math.nan}, "", "data.x"),
    ):
        with pytest.raises(InvalidResponse, match=problem):
            ApprovalEngine(db).respond_to_approval(approval.id, BOSS, "approve", data, comment)
    assert ApprovalEngine(db).responses(approval.id) == []


# -- answers to approval forms ------------------------------------------------------------------

FIELD_TYPES = st.sampled_from(["string", "number", "integer", "boolean", "array", "object"])
FIELD = st.fixed_dictionaries(
    {"name": st.sampled_from(["amount", "reason", "ticket", "count", "ok"]), "type": FIELD_TYPES},
    optional={
        "required": st.booleans(),
        "minimum": st.integers(-5, 5),
        "maxLength": st.integers(0, 5),
        "pattern": st.sampled_from(["^CHG-[0-9]+$", "^[a-z]*$"]),
        "enum": st.lists(SCALARS, max_size=3),
        "format": st.sampled_from(["email", "date", "textarea", "uri"]),
    },
)
CONFIGS = st.one_of(
    st.fixed_dictionaries({"type": st.just("form"), "form_fields": st.lists(FIELD, max_size=4)}),
    st.fixed_dictionaries(
        {"type": st.just("budget"), "context_data": st.fixed_dictionaries({"amount": SCALARS})}
    ),
    st.fixed_dictionaries({"type": st.just("binary")}, optional={"allow_modify": st.booleans()}),
)


@DB_SETTINGS
@given(
    config=CONFIGS,
    decision=st.sampled_from(["approve", "reject", "modify", "maybe", ""]),
    answer=st.dictionaries(
        st.sampled_from(["amount", "reason", "ticket", "count", "ok", "approved_amount", "x"]),
        JSONISH,
        max_size=4,
    ),
)
def test_any_answer_is_recorded_or_refused_by_name(
    db: Database, config: dict[str, Any], decision: str, answer: dict[str, Any]
) -> None:
    engine = ApprovalEngine(db)
    try:
        approval = engine.request_approval(
            None, "Check", requested_from=BOSS, config={**config, "channels": []}
        )
    except DefinitionError as error:
        assert_named_problems(error)
        return
    try:
        engine.respond_to_approval(approval.id, BOSS, decision, answer)
    except CountersignError as error:
        assert str(error) and type(error) is not CountersignError
        with db.read() as session:
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(ApprovalResponse)
                    .where(ApprovalResponse.approval_id == approval.id)
                )
                == 0
            )
        return
    assert engine.get(approval.id).status != "pending"


# -- REST payloads ----------------------------------------------------------------------------


@pytest.fixture
def rest(db: Database) -> Iterator[tuple[TestClient, dict[str, str], str, str]]:
    """A client, an admin's token, a waiting workflow and its open request."""
    workflow_id, approval = waiting_workflow(db)
    with TestClient(create_app(db, approver_ui=False)) as client:
        yield client, token_for(db, BOSS, role="admin"), workflow_id, approval.id


def encoded(value: Any) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity included."""
    return json.dumps(value, allow_nan=True).encode()


BODIES = (
    JSONISH.map(encoded)
    | st.fixed_dictionaries(
        {"definition": DEFINITIONS},
        optional={
            "input": JSONISH,
            "name": SCALARS,
            "start": SCALARS,
            "decision": SCALARS,
            "data": JSONISH,
            "comment": SCALARS,
            "reason": SCALARS,
            "checkpoint": SCALARS,
            "approval_id": SCALARS,
        },
    ).map(encoded)
    | st.binary(max_size=64)
)


def server_kept_its_manners(response: Any) -> bool:
    if response.status_code >= 500:
        return False
    if response.status_code >= 400:
        body = response.json()
        return isinstance(body, dict) and bool(body.get("message"))
    return True


@DB_SETTINGS
@given(
    body=BODIES, target=st.sampled_from(["create", "respond", "rollback", "checkpoint", "pause", "inbound"])
)
def test_any_body_gets_an_answer_below_500_with_a_message(
    rest: tuple[TestClient, dict[str, str], str, str], body: bytes, target: str
) -> None:
    client, auth, workflow_id, approval_id = rest
    path = {
        "create": "/api/workflows",
        "respond": f"/api/approvals/{approval_id}/respond",
        "rollback": f"/api/workflows/{workflow_id}/rollback",
        "checkpoint": f"/api/workflows/{workflow_id}/checkpoints",
        "pause": f"/api/workflows/{workflow_id}/pause",
        "inbound": "/webhooks/inbound",
    }[target]
    response = client.post(path, content=body, headers={**auth, "Content-Type": "application/json"})
    assert server_kept_its_manners(response), (response.status_code, response.text[:500])


QUERY_VALUES = (
    st.text(max_size=40)
    | st.integers().map(str)
    | st.floats().map(lambda f: "nan" if math.isnan(f) else str(f))
)


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["status", "search", "limit", "offset", "workflow_id"]), QUERY_VALUES, max_size=4
    ),
    path=st.sampled_from(["/api/workflows", "/api/approvals"]),
)
def test_any_query_gets_an_answer_below_500_with_a_message(
    rest: tuple[TestClient, dict[str, str], str, str], params: dict[str, str], path: str
) -> None:
    client, auth, _, _ = rest
    response = client.get(path, params=params, headers=auth)
    assert server_kept_its_manners(response), (response.status_code, response.text[:500])
