"""The Approval page keeps what the call does not set unset: the guarded
``notify_customer`` call leaves out ``urgent``, ``channel`` and ``tier`` and sets
``escalate`` to null (tests.helpers.notify_call). Approve, untouched, is a plain
approval and the tool receives its own defaults; a value picked in the Edit
section is the only change sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.approvals.engine import ApprovalEngine
from core.demo.scenarios import DEMO_PASSWORD
from core.identity.users import add_user
from core.store.db import Database
from tests.helpers.approved_calls import FINANCE, run
from tests.helpers.engine import Calls
from tests.helpers.notify_call import RECEIVED, notify_registry, waiting_notice
from tests.integration.dashboard.conftest import _app_over, new_app, no_exception, sign_in


@pytest.fixture
def dashboard(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    add_user(db, FINANCE, role="approver", password=DEMO_PASSWORD)
    with _app_over(monkeypatch, db_url):
        yield db


@pytest.mark.parametrize("pick", [None, "sms"])
def test_approve_leaves_unset_choices_unset_unless_one_is_picked(
    dashboard: Database, calls: Calls, pick: str | None
) -> None:
    registry = notify_registry(calls)
    approval = waiting_notice(dashboard, registry)
    at = new_app()
    at.query_params["approval"] = approval.id
    at.run()
    sign_in(at, FINANCE)
    no_exception(at)
    for name in ("urgent", "channel", "escalate", "tier"):
        assert at.selectbox(key=f"approval.edit.{name}").value is None, name
    if pick is None:
        at.button(key="approval.approve").click().run()
    else:
        at.selectbox(key="approval.edit.channel").set_value(pick)
        at.button(key="approval.modify").click().run()
    no_exception(at)
    [vote] = ApprovalEngine(dashboard).responses(approval.id)
    expected = ("approve", {}) if pick is None else ("modify", {"arguments": {"channel": pick}})
    assert (vote.decision, vote.data) == expected
    run(dashboard, registry)
    assert calls.of("notify_customer") == [RECEIVED if pick is None else {**RECEIVED, "channel": pick}]
