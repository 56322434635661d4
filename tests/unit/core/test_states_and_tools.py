"""The declared state machines, tool registry and argument templates."""

from __future__ import annotations

from typing import Any

import pytest

from core.base.errors import InvalidTransition, ToolNotFound
from core.base.states import (
    APPROVAL_STATUSES,
    WORKFLOW_STATUSES,
    WORKFLOW_TRANSITIONS,
    check_approval_transition,
    check_workflow_transition,
)
from core.engine.tools import ToolContext, ToolRegistry, load_tool_modules, render_args

ALLOWED = sorted((a, b) for a, targets in WORKFLOW_TRANSITIONS.items() for b in targets)
REFUSED = sorted(
    (a, b) for a in WORKFLOW_STATUSES for b in WORKFLOW_STATUSES if b not in WORKFLOW_TRANSITIONS[a]
)


def test_every_workflow_status_has_a_rule() -> None:
    assert set(WORKFLOW_TRANSITIONS) == set(WORKFLOW_STATUSES)
    assert WORKFLOW_TRANSITIONS["cancelled"] == frozenset()


@pytest.mark.parametrize(("current", "new"), ALLOWED)
def test_allowed_workflow_moves(current: str, new: str) -> None:
    check_workflow_transition(current, new)


@pytest.mark.parametrize(("current", "new"), REFUSED)
def test_refused_workflow_moves(current: str, new: str) -> None:
    with pytest.raises(InvalidTransition, match=f"from {current} to {new}"):
        check_workflow_transition(current, new)


def test_approval_moves_only_from_pending() -> None:
    for outcome in APPROVAL_STATUSES[1:]:
        check_approval_transition("pending", outcome)
        for later in APPROVAL_STATUSES:
            with pytest.raises(InvalidTransition):
                check_approval_transition(outcome, later)


SCOPE = {
    "input": {"order": "A-1", "items": [1, 2], "n": 3},
    "context": {"currency": "EUR"},
    "steps": {"a": {"id": "x9"}},
}


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("${input.order}", "A-1"),
        ("${input.items}", [1, 2]),  # a whole reference keeps its type
        (" ${ input.n } ", 3),
        ("order ${input.order} in ${context.currency}", "order A-1 in EUR"),
        ({"k": ["${steps.a.id}", 5]}, {"k": ["x9", 5]}),
        ("no reference", "no reference"),
        (7, 7),
    ],
)
def test_render_args(template: Any, value: Any) -> None:
    assert render_args(template, SCOPE) == value


def test_render_args_unknown_reference_raises_key_error() -> None:
    with pytest.raises(KeyError):
        render_args("${input.missing}", SCOPE)


def test_registry_passes_key_and_context_only_to_tools_that_ask() -> None:
    registry = ToolRegistry()
    seen: dict[str, Any] = {}

    @registry.register("keyed", description="uses the key")
    def keyed(x: int, idempotency_key: str, tool_context: ToolContext) -> dict[str, Any]:
        seen.update(key=idempotency_key, step=tool_context.step_name)
        return {"x": x}

    @registry.register()
    def plain(x: int) -> int:
        return x * 2

    context = ToolContext("wf", "step", "wf/1")
    assert registry.call("keyed", {"x": 1}, context) == {"x": 1}
    assert seen == {"key": "wf/1", "step": "step"}
    assert registry.call("plain", {"x": 4}, context) == {"result": 8}  # non-dicts are wrapped
    assert registry.names() == ["keyed", "plain"] and "plain" in registry
    assert registry.get("keyed").parameters == ["x"]
    with pytest.raises(ToolNotFound, match="registered: keyed, plain"):
        registry.call("nope", {}, context)


def test_load_tool_modules_imports_named_modules() -> None:
    import sys

    sys.modules.pop("core.demo.tools", None)
    load_tool_modules(" core.demo.tools , ")
    assert "core.demo.tools" in sys.modules
    with pytest.raises(ModuleNotFoundError):
        load_tool_modules("no_such_module_xyz")
