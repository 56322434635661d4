"""Conditional gates: whether a call needs a person, decided by a safe expression.

``requires_approval: {when: "args.amount > 1000 or input.country not in ['DE', 'FR']"}``
asks only when the expression is true for the rendered call and the
workflow. Expressions are evaluated by ``simpleeval`` (a small, well-kept
evaluator of Python-like expressions: comparisons, ``and``/``or``/``not``,
``in``, arithmetic, literals, attribute or key access to the names below; no
calls but ``len``, ``min``, ``max``, ``abs``, ``round``, no imports, no
dunder access), never ``eval``. Names: ``args`` (the call's arguments),
``tool``, ``input``, ``context``, ``steps`` (earlier steps' outputs) and
``workflow`` (``id``, ``name``).

An expression is parsed when the definition loads (a syntax error or an
unknown name is refused with its path); at run time an expression that
cannot be evaluated (a missing key, a type error) asks a person: a gate fails
closed.
"""

from __future__ import annotations

import ast
import functools
from typing import Any

from simpleeval import EvalWithCompoundTypes, InvalidExpression

GATE_NAMES = ("args", "tool", "input", "context", "steps", "workflow")
GATE_FUNCTIONS = {"len": len, "min": min, "max": max, "abs": abs, "round": round}
# Longest expression accepted: gates are one line, not programs.
MAX_EXPRESSION_LENGTH = 1000


class GateError(ValueError):
    """An expression that cannot be used as a gate."""


@functools.lru_cache(maxsize=256)
def _parsed(expression: str) -> ast.Expression:
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise GateError(f"longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise GateError(f"not a valid expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Name)
            and node.id not in GATE_NAMES
            and node.id not in GATE_FUNCTIONS
            and node.id not in ("True", "False", "None")
        ):
            bound = {
                n.id
                for comp in ast.walk(tree)
                if isinstance(comp, ast.comprehension)
                for n in ast.walk(comp.target)
                if isinstance(n, ast.Name)
            }
            if node.id not in bound:
                raise GateError(f"unknown name {node.id!r} (use {', '.join(GATE_NAMES)})")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise GateError(f"attribute {node.attr!r} is not allowed")
    return tree


def check_expression(expression: str) -> str | None:
    """Why ``expression`` cannot be a gate, or None."""
    try:
        _parsed(expression)
    except GateError as exc:
        return str(exc)
    return None


def evaluate(expression: str, names: dict[str, Any]) -> bool:
    """The gate's answer for ``names``; raises GateError when it cannot be evaluated."""
    _parsed(expression)
    evaluator = EvalWithCompoundTypes(names={k: names.get(k) for k in GATE_NAMES}, functions=GATE_FUNCTIONS)
    try:
        return bool(evaluator.eval(expression.strip()))
    except (
        InvalidExpression,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        ZeroDivisionError,
        IndexError,
        OverflowError,
        RecursionError,
    ) as exc:
        raise GateError(f"{type(exc).__name__}: {exc}") from None


def needs_person(expression: str, names: dict[str, Any]) -> tuple[bool, str]:
    """(ask a person?, why) for a gate; an expression that fails to evaluate asks."""
    try:
        answer = evaluate(expression, names)
    except GateError as exc:
        return True, f"asked: {expression} could not be evaluated ({exc})"
    if answer:
        return True, f"required: {expression} was true"
    return False, f"not required: {expression} was false"


__all__ = ["GATE_NAMES", "GateError", "check_expression", "evaluate", "needs_person"]
