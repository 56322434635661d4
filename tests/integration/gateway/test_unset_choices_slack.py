"""Slack's Edit modal keeps what the call does not set unset: the guarded
``notify_customer`` call leaves out ``urgent``, ``channel`` and ``tier`` and sets
``escalate`` to null (tests.helpers.notify_call); their selects are drawn with no
option chosen and optional, and the modal submitted as drawn is a plain approval:
the tool receives its own defaults."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.channels.slack import ARGUMENT_BLOCK
from core.store.db import Database
from tests.helpers.approved_calls import run
from tests.helpers.engine import Calls
from tests.helpers.notify_call import RECEIVED, notify_registry, waiting_notice
from tests.integration.gateway.loopback import Recorder
from tests.integration.gateway.test_approved_calls_slack import (  # noqa: F401  (fixtures)
    inputs,
    open_modal,
    post,
    slack,
    slack_env,
    submission,
)


def test_an_untouched_modal_leaves_unset_choices_and_flags_unset(
    client: TestClient,
    db: Database,
    calls: Calls,
    slack: Recorder,  # noqa: F811
) -> None:
    registry = notify_registry(calls)
    approval = waiting_notice(db, registry)
    modal = open_modal(client, slack, approval.id)
    drawn = inputs(modal)
    for name in ("urgent", "channel", "escalate", "tier"):
        block = drawn[ARGUMENT_BLOCK + name]
        assert block["element"]["type"] == "static_select", name
        assert "initial_option" not in block["element"] and block["optional"], name
    body = post(client, submission(modal)).json()
    assert body["response_action"] == "update", body
    [vote] = ApprovalEngine(db).responses(approval.id)
    assert (vote.decision, vote.data, vote.channel) == ("approve", {}, "slack")
    run(db, registry)
    assert calls.of("notify_customer") == [RECEIVED]
