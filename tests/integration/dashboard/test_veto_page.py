"""The Approval page announces a veto window: when the call runs, the time left, and
Veto / Run now instead of Reject / Approve. A veto there stops the call (AppTest, the
real page, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.approvals.engine import ApprovalEngine
from core.demo.scenarios import DEMO_PASSWORD
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from tests.helpers.approved_calls import FINANCE, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.integration.dashboard.conftest import (
    _app_over,
    new_app,
    no_exception,
    shown_text,
    sign_in,
)


@pytest.fixture
def dashboard(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    add_user(db, FINANCE, role="approver", password=DEMO_PASSWORD)
    with _app_over(monkeypatch, db_url):
        yield db


def test_the_page_shows_the_window_and_a_veto_stops_the_call(dashboard: Database) -> None:
    calls = Calls()
    registry: ToolRegistry = pay_registry(calls)
    workflow_id, approval = waiting(dashboard, registry, mode="veto", window="15m")
    at = new_app()
    at.query_params["approval"] = approval.id
    at.run()
    sign_in(at, FINANCE)
    no_exception(at)
    text = shown_text(at)
    assert "(14m left) unless someone vetoes it" in text
    assert at.button(key="approval.reject").label == "Veto"
    assert at.button(key="approval.approve").label == "Run now"
    at.button(key="approval.reject").click().run()
    no_exception(at)
    assert ApprovalEngine(dashboard).get(approval.id).status == "rejected"
    run(dashboard, registry)
    assert calls.of("pay") == []
