"""Property: for any edit and any lower amount, the tool receives exactly the released
call, or the answer is refused and the tool never runs.

Each example opens a guarded ``pay`` call (binary or budget, 12,500 USD),
answers it with a random edit of its arguments and a random approved amount,
runs the runner, and checks what the recording tool received against the
released call and against the rules (same tool, known arguments of the right
types, a budget never above what was asked).
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidInput, InvalidResponse
from core.store.db import Database
from tests.helpers.approved_calls import FINANCE, PROPOSED, pay_registry, run, waiting
from tests.helpers.engine import Calls

EXAMPLES = 120  # each example runs a workflow to its decision and on

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
)
edits = st.dictionaries(st.sampled_from(["amount", "currency", "note", "iban"]), values, max_size=3)
amounts = st.one_of(
    st.none(), st.floats(min_value=-100, max_value=20000, allow_nan=False), st.integers(1, 20000)
)


def _fits(arguments: dict[str, Any]) -> bool:
    amount = arguments.get("amount")
    return (
        set(arguments) <= {"amount", "currency", "note"}
        and isinstance(amount, int | float)
        and not isinstance(amount, bool)
        and math.isfinite(float(amount))
        and isinstance(arguments.get("currency"), str)
        and isinstance(arguments.get("note", ""), str)
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(budget=st.booleans(), edit=edits, approved=amounts, with_tool=st.booleans())
def test_the_tool_receives_the_released_call_or_nothing(
    sqlite_db: Database, budget: bool, edit: dict[str, Any], approved: float | None, with_tool: bool
) -> None:
    calls = Calls()
    registry = pay_registry(calls)
    _, approval = waiting(sqlite_db, registry, "budget" if budget else "binary")
    data: dict[str, Any] = {}
    if edit:
        data["arguments"] = edit
        if with_tool:
            data["tool"] = "pay"
    if budget and approved is not None:
        data["approved_amount"] = approved
    engine = ApprovalEngine(sqlite_db)
    try:
        decided = engine.respond_to_approval(approval.id, FINANCE, "modify" if edit else "approve", data)
    except (InvalidResponse, InvalidInput):
        event("refused")
        run(sqlite_db, registry)
        assert calls.of("pay") == [], "a refused answer ran the tool"
        assert engine.get(approval.id).status == "pending"
        return
    event("released")
    run(sqlite_db, registry)
    assert decided.released_call is not None
    [received] = calls.of("pay")
    assert received == {"note": "", **decided.released_call["arguments"]}
    assert _fits(received), received
    expected = {**PROPOSED, **edit}
    if budget:
        assert 0 < received["amount"] <= PROPOSED["amount"]
        lowest = [a for a in (approved, edit.get("amount")) if a is not None]
        if lowest:
            expected["amount"] = min(float(a) for a in lowest)
    assert {k: (float(v) if k == "amount" else v) for k, v in received.items()} == {
        k: (float(v) if k == "amount" else v) for k, v in expected.items()
    }
