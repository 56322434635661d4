"""No answer removes an argument: an edit of the whole argument object (Gradio's JSON
editor, the dashboard's Edit section) that leaves one out is refused in words
(``InvalidResponse`` naming it), where it used to keep its value silently. An
argument the dashboard does not draw (a budget's amount) is not a removal, nor is one
that is null now."""

from __future__ import annotations

import pytest

from components.approvals import call_edit
from core.approvals.edits import changed_arguments
from core.base.errors import InvalidResponse
from tests.unit.core.test_edit_inputs import ARGUMENTS, view_of


def test_an_argument_left_out_is_refused_by_name() -> None:
    view = view_of()
    edited = {k: v for k, v in ARGUMENTS.items() if k != "message"}
    with pytest.raises(InvalidResponse) as refused:
        changed_arguments(view, edited)
    assert refused.value.problems == [
        "arguments.message: an argument cannot be removed (put it back, or give it another value)"
    ]
    assert changed_arguments(view, {**edited, "message": ""}) == {"message": ""}
    assert (
        changed_arguments(
            view_of({**ARGUMENTS, "rate": None}), {"to": "bob", "account": 7, "message": ARGUMENTS["message"]}
        )
        == {}
    )


def test_the_dashboard_keeps_what_it_does_not_draw_and_refuses_what_it_drew_and_lost() -> None:
    budget = view_of(approval_type="budget", amount=0.5)  # "rate" is the approved amount's
    drawn = {k: v for k, v in ARGUMENTS.items() if k != "rate"}
    assert call_edit(budget, drawn) == {"arguments": {}}
    with pytest.raises(InvalidResponse, match="arguments.to: an argument cannot be removed"):
        call_edit(budget, {k: v for k, v in drawn.items() if k != "to"})
