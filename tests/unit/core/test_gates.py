"""Conditional gates: a safe expression decides whether a call needs a person."""

from __future__ import annotations

import pytest

from core.base.errors import DefinitionError
from core.definitions.gates import check_expression, needs_person
from core.definitions.workflow import parse_definition

NAMES = {
    "args": {"amount": 1200, "to": "ops@example.com"},
    "tool": "pay",
    "input": {"country": "US"},
    "context": {},
    "steps": {"check": {"risk": 0.2}},
    "workflow": {"id": "w", "name": "Pay"},
}


@pytest.mark.parametrize(
    ("expression", "asks"),
    [
        ("args.amount > 1000 or input.country not in ['DE', 'FR']", True),
        ("args.amount > 5000 and input.country in ['DE', 'FR']", False),
        ("steps.check.risk >= 0.5", False),
        ("tool == 'pay' and args.to[-12:] == '@example.com'", True),
        ("len(args) > 5", False),
    ],
)
def test_a_gate_asks_when_its_expression_is_true(expression: str, asks: bool) -> None:
    needed, why = needs_person(expression, NAMES)
    assert needed is asks
    assert why == (f"required: {expression} was true" if asks else f"not required: {expression} was false")


@pytest.mark.parametrize(
    "expression", ["args.missing > 3", "args.amount / 0 > 1", "'a' * 10**9 == 'b'", "args.to > 3"]
)
def test_a_gate_that_cannot_be_evaluated_asks(expression: str) -> None:
    needed, why = needs_person(expression, NAMES)
    assert needed and why.startswith(f"asked: {expression} could not be evaluated")


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("__import__('os').system('id')", "unknown name '__import__'"),
        ("args.__class__.__mro__", "is not allowed"),
        ("open('/etc/passwd')", "unknown name 'open'"),
        ("amount > 3", "unknown name 'amount'"),
        ("args.amount >", "not a valid expression"),
        ("x" * 1001, "longer than 1000 characters"),
    ],
)
def test_unsafe_or_broken_expressions_are_refused(expression: str, problem: str) -> None:
    assert problem in str(check_expression(expression))


def test_a_gate_is_checked_when_the_definition_loads() -> None:
    step = {
        "name": "pay",
        "type": "tool",
        "tool": "pay",
        "args": {"amount": 5},
        "approval_config": {"requested_from": "finance@example.com"},
    }
    definition = parse_definition({"steps": [{**step, "requires_approval": {"when": "args.amount > 1000"}}]})
    assert definition.steps[0].approval_gate == "args.amount > 1000"
    assert definition.steps[0].needs_approval  # may ask: decided per call at run time
    with pytest.raises(DefinitionError, match=r"steps\[0\]\.requires_approval\.when: unknown name"):
        parse_definition({"steps": [{**step, "requires_approval": {"when": "amount > 3"}}]})
