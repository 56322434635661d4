"""The Approval page keeps what the call does not set unset: the guarded
``notify_customer`` call leaves out ``urgent``, ``channel`` and ``tier`` and sets
``escalate`` to null (tests.helpers.notify_call). Approve, untouched, is a plain
approval and the tool receives its own defaults; a value picked in the Edit
section is the only change sent."""

from __future__ import annotations

import pytest

from core.approvals.engine import ApprovalEngine
from core.store.db import Database
from tests.helpers.approved_calls import FINANCE, run
from tests.helpers.engine import Calls
from tests.helpers.notify_call import RECEIVED, notify_registry, waiting_notice
from tests.integration.dashboard.conftest import new_app, no_exception, sign_in
from tests.integration.dashboard.test_approved_calls_page import dashboard  # noqa: F401  (fixture)


@pytest.mark.parametrize("pick", [None, "sms"])
def test_approve_leaves_unset_choices_unset_unless_one_is_picked(
    dashboard: Database,  # noqa: F811
    calls: Calls,
    pick: str | None,
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
