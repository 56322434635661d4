"""The Approval page's answer counts only for what the page showed.

A two-level budget request for a guarded ``pay`` call: finance and the admin
answer level 1, the admin alone level 2. The admin's page shows the call as
proposed (note "invoice 7"); meanwhile finance passes level 1 from another
channel with a changed note. The admin clicks Approve on the page drawn
before: the answer is refused as out of date (``AnswerOutdated``), nothing is
recorded, and the page now shows the changed call; approved from that page,
the tool receives the call the admin saw.
"""

from __future__ import annotations

from core.approvals.engine import ApprovalEngine
from core.demo.scenarios import DEMO_PASSWORD
from core.identity.users import add_user
from core.store.db import Database
from tests.helpers.approved_calls import FINANCE, PROPOSED, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.integration.dashboard.conftest import new_app, no_exception, sign_in
from tests.integration.dashboard.test_approved_calls_page import dashboard  # noqa: F401  (fixture)

ADMIN = "admin@example.com"
LEVELS = [
    {"name": "team", "min_amount": 0, "approvers": [FINANCE, ADMIN]},
    {"name": "lead", "min_amount": 50, "approvers": [ADMIN]},
]
ESCROW = "invoice 7, pay to escrow"


def shown_note(at: object) -> str:
    return str(at.text_input(key="approval.edit.note").value)  # type: ignore[attr-defined]


def test_approve_on_a_page_drawn_before_the_call_changed_is_refused(
    dashboard: Database,  # noqa: F811
    calls: Calls,
) -> None:
    add_user(dashboard, ADMIN, role="admin", password=DEMO_PASSWORD)
    registry = pay_registry(calls)
    _, approval = waiting(dashboard, registry, "budget", levels=LEVELS, requested_from=[FINANCE, ADMIN])
    engine = ApprovalEngine(dashboard)
    at = new_app()
    at.query_params["approval"] = approval.id
    at.run()
    sign_in(at, ADMIN)
    no_exception(at)
    assert shown_note(at) == "invoice 7"
    # Meanwhile, from another channel: finance passes level 1 with a changed note.
    engine.respond_to_approval(approval.id, FINANCE, "modify", {"arguments": {"note": ESCROW}}, channel="api")
    assert engine.get(approval.id).level == 1
    at.button(key="approval.approve").click().run()
    no_exception(at)
    shown = "\n".join(e.value for e in at.error)
    assert "Nothing was recorded" in shown and "which is at level 2 now: it decides nothing" in shown, shown
    assert [v.approver for v in engine.responses(approval.id)] == [FINANCE]
    assert engine.get(approval.id).status == "pending"
    assert shown_note(at) == ESCROW  # the page shows the call as it is now
    at.button(key="approval.approve").click().run()  # approved as seen
    no_exception(at)
    assert engine.get(approval.id).status in ("approved", "modified")
    run(dashboard, registry)
    assert calls.of("pay") == [{**PROPOSED, "note": ESCROW}]
