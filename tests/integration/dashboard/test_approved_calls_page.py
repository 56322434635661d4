"""The Approval page releases exactly the call its approver approved.

Each case of ``tests.helpers.approved_calls.CASES`` is answered through the
real page in AppTest, on SQLite and PostgreSQL; the test then runs the
runner with the recording registry itself (AppTest runs in this process)
and asserts what the ``pay`` tool *received*. The demo's confirmation agent
holds its ``send_confirmation`` call: editing its message on the page makes
the tool receive the edited message.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import components.approvals
from core.approvals.engine import ApprovalEngine
from core.demo.scenarios import DEMO_PASSWORD, load_demo
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry, default_registry
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from tests.helpers.approved_calls import CASES, FINANCE, REQUESTER, pay_registry, run, waiting
from tests.helpers.engine import Calls
from tests.integration.dashboard.conftest import _app_over, new_app, no_exception, sign_in

# A UI cannot type these (a number field takes numbers; the form names no other tool):
# they are sent through the page's own submit path with the edit crafted.
CRAFTED = {"schema_broken", "other_tool"}
REFUSAL_NAMES = {"schema_broken": "arguments.amount", "other_tool": "tool: an edit cannot name"}


@pytest.fixture
def dashboard(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The in-process dashboard over ``db`` (SQLite, then PostgreSQL), with finance's account."""
    add_user(db, FINANCE, role="approver", password=DEMO_PASSWORD)
    add_user(db, REQUESTER, role="approver", password=DEMO_PASSWORD)
    with _app_over(monkeypatch, db_url):
        yield db


def open_approval(email: str, approval_id: str) -> AppTest:
    at = new_app()
    at.query_params["approval"] = approval_id
    at.run()
    sign_in(at, email)
    no_exception(at)
    return at


# The page's text tables, told apart by their columns (dataframes without selection have no key).
_COLUMNS = {"approval.call": "proposed", "approval.changes": "before", "approval.facts": "what"}


def table(at: AppTest, name: str) -> list[dict[str, Any]]:
    """The rows of one of the page's text tables, as shown."""
    [frame] = [d.value for d in at.dataframe if _COLUMNS[name] in d.value.columns]
    rows: list[dict[str, Any]] = frame.to_dict("records")
    return rows


def edit_keys(at: AppTest) -> set[str]:
    prefix = f"{components.approvals.EDIT_KEY}."
    return {
        str(w.key)
        for kind in ("text_input", "text_area", "number_input", "selectbox", "checkbox")
        for w in getattr(at, kind)
        if str(w.key).startswith(prefix)
    }


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


@pytest.mark.parametrize("case", list(CASES))
def test_what_the_tool_receives_is_what_the_page_approved(
    dashboard: Database, calls: Calls, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    approval_type, decision, data, received = CASES[case]
    registry = pay_registry(calls)
    workflow_id, approval = waiting(dashboard, registry, approval_type)
    at = open_approval(FINANCE, approval.id)

    # What approving does, from the request view: the call as a table.
    assert "Approving runs the tool **pay** with these arguments:" in [m.value for m in at.markdown]
    assert table(at, "approval.call") == [
        {"argument": "amount", "proposed": "12500"},
        {"argument": "currency", "proposed": "USD"},
        {"argument": "note", "proposed": "invoice 7"},
    ]
    shown = "\n".join(m.value for m in at.markdown)
    assert "**Votes:** 0 of 1 needed" in shown
    # The Edit section offers this tool's arguments only (a budget's amount is the approved amount).
    expected_edit = {"approval.edit.currency", "approval.edit.note"} | (
        {"approval.edit.amount"} if approval_type != "budget" else set()
    )
    assert edit_keys(at) == expected_edit
    if approval_type == "budget":
        assert "**Amount:** 12,500.00 USD (twelve thousand five hundred US dollars)" in shown

    if case == "approve":
        at.button(key="approval.approve").click().run()
    elif case == "edited":
        at.text_input(key="approval.edit.note").input(data["arguments"]["note"])
        at.button(key="approval.modify").click().run()
    elif case == "budget_lower":
        at.number_input(key="approval.form.approved_amount").set_value(data["approved_amount"])
        at.button(key="approval.approve").click().run()
    else:
        assert case in CRAFTED
        # Nothing on the form can hold these: amount is a number field, and no field names a tool.
        assert at.number_input(key="approval.edit.amount").value == 12500
        assert not [w for w in at.selectbox if "tool" in str(w.key)]
        crafted = {k: v for k, v in data.items()}
        monkeypatch.setattr(components.approvals, "call_edit", lambda view, drawn: crafted)
        at.text_input(key="approval.edit.note").input("changed, so the edit is sent")
        at.button(key="approval.modify").click().run()
    no_exception(at)

    engine = ApprovalEngine(dashboard)
    if received is None:
        text = errors(at)
        assert "Nothing was recorded. The answer was refused" in text
        assert REFUSAL_NAMES[case].replace(".", "").replace(" ", "") in text.replace("\\", "").replace(
            ".", ""
        ).replace(" ", ""), text
        assert engine.get(approval.id).status == "pending"
        assert engine.responses(approval.id) == []
        assert at.button(key="approval.approve")  # still answerable
    else:
        flash = [s.value for s in at.success]
        # A plain Approve of a lower amount says what it approved.
        said = "You approved a lower amount: " if case == "budget_lower" else "You approved the request"
        assert flash and flash[0].startswith(said), flash
        [vote] = engine.responses(approval.id)
        # (The engine records an approval of a lower amount as a change.)
        recorded = "modify" if case == "budget_lower" else decision
        assert (vote.decision, vote.channel) == (recorded, "dashboard")
        if case == "edited":
            assert vote.data == data  # only the changed argument is sent
    run(dashboard, registry)
    assert calls.of("pay") == ([received] if received is not None else [])
    assert calls.of("refund") == []
    status = ops.get_workflow(dashboard, workflow_id).status
    assert status == ("completed" if received is not None else "waiting_approval")

    if received is not None and received != CASES["approve"][3]:
        # Decided: the page shows what ran against what was proposed.
        at.run()
        changes = table(at, "approval.changes")
        assert changes == [
            {"argument": k, "before": str(v), "after": str(received[k])}
            for k, v in CASES["approve"][3].items()
            if received[k] != v
        ]


def test_approve_with_an_edit_left_in_the_form_is_not_sent(dashboard: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(dashboard, registry)
    at = open_approval(FINANCE, approval.id)
    at.text_input(key="approval.edit.note").input("invoice 8")
    at.button(key="approval.approve").click().run()
    assert "You changed note in the Edit section" in errors(at)
    assert ApprovalEngine(dashboard).responses(approval.id) == []
    at.button(key="approval.modify").click().run()  # the edit is still there: now sent
    run(dashboard, registry)
    assert calls.of("pay") == [{"amount": 12500, "currency": "USD", "note": "invoice 8"}]


def test_approve_with_changes_and_nothing_changed_is_refused(dashboard: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    _, approval = waiting(dashboard, registry)
    at = open_approval(FINANCE, approval.id)
    at.button(key="approval.modify").click().run()
    assert "Nothing was changed" in errors(at)
    assert ApprovalEngine(dashboard).responses(approval.id) == []


def test_reject_runs_nothing(dashboard: Database, calls: Calls) -> None:
    registry = pay_registry(calls)
    workflow_id, approval = waiting(dashboard, registry)
    at = open_approval(FINANCE, approval.id)
    at.text_input(key="approval.edit.note").input("ignored: this is a refusal")
    at.text_area(key="approval.comment").input("Not this month.")
    at.button(key="approval.reject").click().run()
    no_exception(at)
    assert ApprovalEngine(dashboard).get(approval.id).status == "rejected"
    [vote] = ApprovalEngine(dashboard).responses(approval.id)
    assert (vote.decision, vote.data, vote.comment) == ("reject", {}, "Not this month.")
    run(dashboard, registry)
    assert calls.of("pay") == []
    assert ops.get_workflow(dashboard, workflow_id).status == "failed"


# -- the agent's held call ------------------------------------------------------------------


def confirmation_registry(calls: Calls) -> ToolRegistry:
    """The demo's tools, with send_confirmation recording what it received."""
    reg = ToolRegistry()
    for name in default_registry.names():
        tool = default_registry.get(name)
        reg.add(name, tool.function, description=tool.description, compensate=tool.compensate)

    @reg.register("send_confirmation")
    def send_confirmation(order_id: str, message: str, idempotency_key: str) -> dict[str, Any]:
        """Email the order confirmation to the customer (records what it received)."""
        calls.add("send_confirmation", order_id=order_id, message=message)
        return {"sent": True, "order_id": order_id}

    return reg


def test_the_agents_held_call_is_shown_and_sent_as_edited(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch, calls: Calls
) -> None:
    registry = confirmation_registry(calls)
    [order, *_] = load_demo(db)
    build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)
    engine = ApprovalEngine(db)
    [payment] = engine.list_pending_approvals(workflow_id=order.id)
    with _app_over(monkeypatch, db_url):
        # The payment: a budget of a guarded charge_payment call, approved as asked.
        at = open_approval("finance@example.com", payment.id)
        assert "Approving runs the tool **charge\\_payment** with these arguments:" in [
            m.value for m in at.markdown
        ]
        assert {r["argument"] for r in table(at, "approval.call")} == {"amount", "currency"}
        facts = {r["what"]: r["value"] for r in table(at, "approval.facts")}
        assert facts["Order id"] == "ORD-1042"
        at.button(key="approval.approve").click().run()
        no_exception(at)
        build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)

        [held] = engine.list_pending_approvals(workflow_id=order.id)
        at = open_approval("manager@example.com", held.id)
        shown = "\n".join(m.value for m in at.markdown)
        assert "Approving runs the tool **send\\_confirmation** with these arguments:" in shown
        rows = {r["argument"]: r["proposed"] for r in table(at, "approval.call")}
        proposed = rows["message"]
        assert set(rows) == {"order_id", "message"} and "is confirmed and paid" in proposed
        assert edit_keys(at) == {"approval.edit.order_id", "approval.edit.message"}
        assert at.text_area(key="approval.edit.message").value == proposed
        edited = f"{proposed} It ships on Friday."
        at.text_area(key="approval.edit.message").input(edited)
        at.button(key="approval.modify").click().run()
        no_exception(at)
        [vote] = engine.responses(held.id)
        assert (vote.decision, vote.data) == ("modify", {"arguments": {"message": edited}})

    build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)
    assert calls.of("send_confirmation") == [{"order_id": rows["order_id"], "message": edited}]
    assert ops.get_workflow(db, order.id).status == "completed"


def test_arguments_of_every_shape_come_back_unchanged_unless_edited(
    dashboard: Database, calls: Calls
) -> None:
    """Lists, objects, dates, flags and optional values ride through the Edit section as they
    were; only the argument the approver changed is sent, and the tool gets all the rest."""
    registry = ToolRegistry()

    @registry.register("ship")
    def ship(
        order: dict[str, Any],
        lines: list[dict[str, Any]],
        express: bool,
        count: int,
        when: datetime,
        label: str | None = None,
        idempotency_key: str = "",
    ) -> dict[str, Any]:
        """Ship an order (records what it received)."""
        calls.add("ship", order=order, lines=lines, express=express, count=count, when=when, label=label)
        return {}

    args = {
        "order": {"id": "ORD-9", "tags": ["a", "b"]},
        "lines": [{"sku": "X", "qty": 2, "note": None}],
        "express": True,
        "count": 2,
        "when": "2026-12-24T09:30:00Z",
        "label": "Fragile: *glass*\nhandle with care",
    }
    workflow = ops.create_workflow(
        dashboard,
        {
            "name": "ship",
            "steps": [
                {
                    "name": "ship",
                    "type": "tool",
                    "tool": "ship",
                    "requires_approval": True,
                    "args": args,
                    "approval_config": {"requested_from": FINANCE},
                }
            ],
        },
        created_by=REQUESTER,
    )
    run(dashboard, registry)
    [approval] = ApprovalEngine(dashboard).list_pending_approvals(workflow_id=workflow.id)
    at = open_approval(FINANCE, approval.id)
    assert [r["argument"] for r in table(at, "approval.call")] == [
        "order",
        "lines",
        "express",
        "count",
        "when",
        "label",
    ]
    assert at.text_area(key="approval.edit.label").value == args["label"]
    at.number_input(key="approval.edit.count").set_value(3)
    at.button(key="approval.modify").click().run()
    no_exception(at)
    [vote] = ApprovalEngine(dashboard).responses(approval.id)
    assert vote.data == {"arguments": {"count": 3}}
    run(dashboard, registry)
    # (Tools get the JSON values; "when" is a date-time in the schema, a string on the wire.)
    assert calls.of("ship") == [{**args, "count": 3}]
