"""Values longer than their column holds, on SQLite and PostgreSQL (core.store.lengths):
refused in words naming the field, its length and the limit, with nothing written, on
both databases alike (PostgreSQL raised a driver error naming only the type; SQLite
stored the value whole). At the limit, accepted. An approval title from a definition
over the limit is refused when the definition is loaded; one given at run time is
shortened."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from core.approvals.engine import open_approval
from core.base.errors import DefinitionError, Invalid, TooLong
from core.definitions.workflow import parse_approval_config
from core.engine import workflows as ops
from core.identity.api_tokens import create_token
from core.identity.users import add_user, get_user
from core.store.db import Database
from core.store.tables import ApiToken, ApprovalRequest, User, Workflow, utcnow
from gateway.app import create_app
from tests.helpers.engine import REQUESTER, accounts

ADMIN = "admin@example.com"
STEPS = [{"name": "a", "type": "checkpoint"}]


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    accounts(db, "admin", ADMIN)
    accounts(db, "service", REQUESTER)


def _count(db: Database, table: Any) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


CASES: dict[str, tuple[Any, Callable[[Database, int], Any], str]] = {
    "account name": (User, lambda db, n: add_user(db, "new@example.com", name="n" * n, actor=ADMIN), "name"),
    "API token name": (ApiToken, lambda db, n: create_token(db, ADMIN, "t" * n, actor=ADMIN), "name"),
    "workflow name": (
        Workflow,
        lambda db, n: ops.create_workflow(
            db, {"name": "x", "steps": STEPS}, name="w" * n, created_by=REQUESTER
        ),
        "name",
    ),
}
LIMITS = {"account name": 200, "API token name": 200, "workflow name": 200}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_value_over_its_column_is_refused_in_words_and_nothing_is_written(db: Database, case: str) -> None:
    table, act, field = CASES[case]
    limit = LIMITS[case]
    before = _count(db, table)
    with pytest.raises(Invalid) as refused:
        act(db, limit + 1)
    assert f"{field}: {limit + 1:,} characters, at most {limit:,}" in str(refused.value)
    assert _count(db, table) == before
    act(db, limit)  # at the limit: stored whole
    assert _count(db, table) == before + 1


def test_a_row_stored_longer_before_is_still_updated_when_that_value_is_untouched(db: Database) -> None:
    """Only what changes is checked: a row a looser database kept over the limit (SQLite
    stored such values) does not block an unrelated change."""
    if db.is_postgres:
        pytest.skip("PostgreSQL never stored a value over its column")
    with db.session() as session:
        now = utcnow()
        session.execute(
            insert(User).values(
                email="legacy@example.com", name="L" * 250, role="approver", created_at=now, updated_at=now
            )
        )
    add_user(db, "legacy@example.com", role="admin", actor=ADMIN)
    assert get_user(db, "legacy@example.com").role == "admin"
    with pytest.raises(TooLong, match="name: 260 characters, at most 200"):
        add_user(db, "legacy@example.com", name="L" * 260, actor=ADMIN)


def test_an_approval_title_over_the_limit_is_refused_when_the_definition_is_loaded(db: Database) -> None:
    config = {"title": "T" * 501, "requested_from": ADMIN}
    with pytest.raises(DefinitionError, match="title: string should have at most 500 characters"):
        ops.create_workflow(
            db,
            {"name": "x", "steps": [{"name": "ask", "type": "approval", "approval_config": config}]},
            created_by=REQUESTER,
        )
    assert _count(db, Workflow) == 0


def test_an_approval_title_given_at_run_time_is_shortened_not_refused(db: Database) -> None:
    with db.session() as session:
        opened = open_approval(
            session,
            config=parse_approval_config({"requested_from": ADMIN}),
            title="Q" * 700,
            requested_by=REQUESTER,
        )
        approval_id = opened.id
    with db.read() as session:
        title = session.scalars(select(ApprovalRequest.title).where(ApprovalRequest.id == approval_id)).one()
    assert len(title) == 500 and title == "Q" * 499 + "\u2026"


def test_rest_answers_a_long_workflow_name_with_422_naming_it(db: Database) -> None:
    _, token = create_token(db, REQUESTER, "tests")
    with TestClient(create_app(db, approver_ui=False)) as client:
        answer = client.post(
            "/api/workflows",
            json={"name": "w" * 201, "definition": {"name": "x", "steps": STEPS}},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["problems"] == ["name: String should have at most 200 characters"]
    assert _count(db, Workflow) == 0


def test_an_account_address_over_rfc_5321_lengths_is_refused_in_words_and_nothing_is_written(
    db: Database,
) -> None:
    """An address is checked as an address (core.identity.addresses: 64 characters before
    the @, 254 in all) before its column's 320 could be reached."""

    def address(length: int) -> str:
        domain = "a" * 63 + "." + "b" * 63 + "." + "c" * (length - 65 - 132) + ".com"
        return "e" * 64 + "@" + domain

    before = _count(db, User)
    with pytest.raises(Invalid, match="is longer than 254 characters"):
        add_user(db, address(255), name="E", actor=ADMIN)
    with pytest.raises(Invalid, match="has more than 64 characters before the @"):
        add_user(db, "e" * 65 + "@example.com", name="E", actor=ADMIN)
    assert _count(db, User) == before
    add_user(db, address(254), name="E", actor=ADMIN)  # at the limit: stored whole
    assert _count(db, User) == before + 1
