"""Conditional gates: whether a call needs a person, decided by a safe expression.

``requires_approval: {when: "args.amount > 1000 or input.country not in ['DE', 'FR']"}``
asks only when the expression is true for the rendered call and the
workflow. The same language serves agents' held-tool gates and standing rules'
conditions. Expressions are evaluated by ``simpleeval`` (a small, well-kept
evaluator of Python-like expressions), never ``eval``, and only this much of
Python is accepted: comparisons, ``and``/``or``/``not``, ``in``, ``is``,
``x if c else y``, arithmetic (``+ - * / // % **``), literals (numbers,
strings, lists, tuples, sets, dicts), key access to the names below
(``args.amount`` or ``args['amount']``), indexes and slices, and calls of
``len``, ``min``, ``max``, ``abs`` and ``round`` with plain arguments. No
method calls, no other functions, no comprehensions, lambdas, f-strings,
``**``/``*`` unpacking, bitwise operators, imports or ``_`` attributes. Names:
``args`` (the call's arguments), ``tool``, ``input``, ``context``, ``steps``
(earlier steps' outputs) and ``workflow`` (``id``, ``name``).

Two lines of defence, because anyone who may start a workflow writes gates:

* **The check** (``check_expression``: a definition's load, a standing rule's
  creation or edit, an agent profile's save) refuses what is outside the
  language, each refusal naming what it refused (``'len(tool.center(9)) < 0'
  calls tool.center(9): ...``), an expression longer than 1,000 characters and
  one nested more than ``MAX_DEPTH`` levels.
* **The evaluation** (``evaluate``) runs the same check first, so an expression
  stored before the check knew better fails closed, and is bounded itself: it
  reads plain copies of the names (never the live call, which it so cannot
  change), and refuses before computing anything that would build more than
  ``MAX_BUILT`` characters or items in all (``*``, ``+``, slices, literals), an
  integer longer than ``MAX_INT_DIGITS`` digits (``*``, ``**``, ``round``'s
  digits), or string formatting with ``%``.

At run time an expression that cannot be evaluated (a missing key, a type
error, a bound) asks a person: a gate fails closed, a rule releases nothing.
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from simpleeval import DEFAULT_OPERATORS, InvalidExpression, SimpleEval

from core.base.errors import quoted

GATE_NAMES = ("args", "tool", "input", "context", "steps", "workflow")
# Longest expression accepted: gates are one line, not programs.
MAX_EXPRESSION_LENGTH = 1000
# Deepest nesting of an expression: above a 64-deep argument's literal (core.base.storable)
# and what it is compared in; far below the interpreter's recursion limit.
MAX_DEPTH = 100
# Characters and items an evaluation may build in all (simpleeval's bound on one string).
MAX_BUILT = 100_000
# Longest integer an evaluation may make: Python's own limit for integers read from text.
MAX_INT_DIGITS = 4300
_MAX_INT_BITS = math.ceil(MAX_INT_DIGITS * math.log2(10))
# Plain copies of values nested deeper than this are refused (stored values: 64).
_MAX_VALUE_DEPTH = 100


class GateError(ValueError):
    """An expression that cannot be used as a gate."""


def _round(number: Any, ndigits: Any = None) -> Any:
    # round(5, -10**7) computes 10**10**7 first: seconds of CPU.
    if isinstance(ndigits, int) and abs(ndigits) > MAX_INT_DIGITS:
        raise GateError(f"round to more than {MAX_INT_DIGITS} digits")
    return round(number) if ndigits is None else round(number, ndigits)


_FUNCTIONS: dict[str, Callable[..., Any]] = {"len": len, "min": min, "max": max, "abs": abs, "round": _round}
# The only functions an expression may call (a view: nothing may widen it).
GATE_FUNCTIONS = MappingProxyType(_FUNCTIONS)
_CALLS_WORDS = "an expression may call only len, min, max, abs and round"

# -- the check ------------------------------------------------------------------------------

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.IfExp,
    ast.Call,
    ast.keyword,  # refused with its call, by name
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
)
_REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "an assignment (:=)",
    ast.Starred: "* unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}
_OPERATOR_SIGNS: dict[type[ast.AST], str] = {
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.MatMult: "@",
}
_CONSTANT_WORDS: dict[type, str] = {bytes: "a bytes literal", complex: "a complex number"}
_LANGUAGE_WORDS = "use comparisons, and/or/not, in, arithmetic, literals and len, min, max, abs, round"


def _shown(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _Checked:
    """A checked expression: its tree, and what each name is read for (a key of it, by
    ``name.key`` or ``name['key']``; or None: the whole value)."""

    text: str
    tree: ast.Expression
    uses: MappingProxyType[str, frozenset[str] | None]
    strings: frozenset[str]


def _walk(tree: ast.AST) -> Iterable[tuple[ast.AST, ast.AST | None, int]]:
    """Every node with its parent and depth, outer nodes first, left to right."""
    stack: list[tuple[ast.AST, ast.AST | None, int]] = [(tree, None, 0)]
    while stack:
        node, parent, depth = stack.pop()
        yield node, parent, depth
        stack.extend((child, node, depth + 1) for child in reversed(list(ast.iter_child_nodes(node))))


def _problem(text: str, tree: ast.Expression) -> str | None:
    """Why ``tree`` is outside the language, or None. The kind of each node first (and the
    depth), then names, then calls and attributes: the first problem of the first sort."""
    nodes = list(_walk(tree))

    def segment(node: ast.AST) -> str:
        return _shown(ast.get_source_segment(text, node) or type(node).__name__, 80)

    for node, _, depth in nodes:
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        if type(node) in _REFUSED_NODES:
            return f"{_REFUSED_NODES[type(node)]} ({segment(node)}) is not allowed: {_LANGUAGE_WORDS}"
        if type(node) in _OPERATOR_SIGNS:
            return f"the operator {_OPERATOR_SIGNS[type(node)]} is not allowed: arithmetic is + - * / // % **"
        if isinstance(node, ast.Constant) and type(node.value) in _CONSTANT_WORDS:
            return f"{_CONSTANT_WORDS[type(node.value)]} ({segment(node)}) is not allowed"
        if isinstance(node, ast.Dict) and any(key is None for key in node.keys):
            return f"** unpacking ({segment(node)}) is not allowed: {_LANGUAGE_WORDS}"
        if not isinstance(node, _ALLOWED_NODES):
            return f"{type(node).__name__} ({segment(node)}) is not allowed: {_LANGUAGE_WORDS}"
    for node, _, _ in nodes:
        if isinstance(node, ast.Name) and node.id not in GATE_NAMES and node.id not in _FUNCTIONS:
            return f"unknown name {node.id!r} (use {', '.join(GATE_NAMES)})"
    for node, parent, _ in nodes:
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
                return f"{quoted(_shown(text, 120))} calls {segment(node)}: {_CALLS_WORDS}"
            if node.keywords:
                given = ", ".join(f"{k.arg}=" for k in node.keywords)
                return (
                    f"{segment(node)} passes {given}: give {node.func.id} plain values, no keyword arguments"
                )
        elif isinstance(node, ast.Name) and node.id in _FUNCTIONS:
            if not (isinstance(parent, ast.Call) and parent.func is node):
                return f"{node.id} is a function: call it, as in {node.id}(args)"
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                return f"attribute {node.attr!r} is not allowed"
            if hasattr(dict, node.attr):
                key = f"{segment(node.value)}[{node.attr!r}]"
                return f"{segment(node)} would read a dict's own {node.attr}, not a key: write {key}"
    return None


def _uses(tree: ast.Expression) -> dict[str, frozenset[str] | None]:
    uses: dict[str, set[str] | None] = {}
    for node, parent, _ in _walk(tree):
        if not isinstance(node, ast.Name) or node.id not in GATE_NAMES:
            continue
        key: str | None = None
        if isinstance(parent, ast.Attribute) and parent.value is node:
            key = parent.attr
        elif (
            isinstance(parent, ast.Subscript)
            and parent.value is node
            and isinstance(parent.slice, ast.Constant)
            and isinstance(parent.slice.value, str)
        ):
            key = parent.slice.value
        if key is None:
            uses[node.id] = None
        elif (keys := uses.setdefault(node.id, set())) is not None:
            keys.add(key)
    return {name: None if keys is None else frozenset(keys) for name, keys in uses.items()}


@functools.lru_cache(maxsize=256)
def _parsed(expression: str) -> _Checked:
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise GateError(f"longer than {MAX_EXPRESSION_LENGTH} characters")
    text = expression.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise GateError(f"not a valid expression: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise GateError(f"not a valid expression: {exc}") from None
    if problem := _problem(text, tree):
        raise GateError(problem)
    strings = frozenset(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )
    return _Checked(text, tree, MappingProxyType(_uses(tree)), strings)


def check_expression(expression: str) -> str | None:
    """Why ``expression`` cannot be a gate, or None."""
    try:
        _parsed(expression)
    except GateError as exc:
        return str(exc)
    return None


# -- the evaluation -------------------------------------------------------------------------


def _plain(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` made only of dict, list, tuple, str, int, float, bool and None
    (their subclasses become the plain type, by the base type's own methods, so no method
    of a foreign object runs); anything else is not plain data."""
    if depth > _MAX_VALUE_DEPTH:
        raise GateError(f"a value nested more than {_MAX_VALUE_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in dict.items(value)}
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return tuple(_plain(v, depth + 1) for v in tuple.__iter__(value))
    raise GateError(f"a {type(value).__name__} is not plain data")


def _copy(value: Any, keys: frozenset[str] | None, strings: frozenset[str]) -> Any:
    """What the evaluator reads for one name: a plain copy of the keys the expression names
    (a lazy mapping, such as the engine's earlier outputs, loads each on its first read),
    or of the whole value."""
    if not isinstance(value, dict):
        return _plain(value)
    if keys is None:
        if type(value) is dict:
            return _plain(value)
        # A lazy mapping, read whole: what it holds, and what a string of the expression names.
        keys, copied = strings, _plain(value)
    else:
        copied = {}
    for key in keys:
        if key in value:
            copied[key] = _plain(value[key], 1)
    return copied


def _size(value: Any, cap: int) -> int:
    """Characters and items in ``value``, counted deep, up to a little past ``cap``."""
    total, stack = 0, [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            stack.extend(item)
    return total


def _bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


class _Evaluator(SimpleEval):
    """simpleeval with this language only, over plain copies, within the bounds above."""

    def __init__(self, names: dict[str, Any]) -> None:
        operators: dict[type, Callable[..., Any]] = {
            kind: DEFAULT_OPERATORS[kind]
            for kind in (
                ast.Eq,
                ast.NotEq,
                ast.Lt,
                ast.LtE,
                ast.Gt,
                ast.GtE,
                ast.In,
                ast.NotIn,
                ast.Is,
                ast.IsNot,
                ast.Not,
                ast.USub,
                ast.UAdd,
                ast.Div,
                ast.FloorDiv,
                ast.Sub,
            )
        }
        operators.update({ast.Add: self._add, ast.Mult: self._mult, ast.Pow: self._power, ast.Mod: self._mod})
        super().__init__(operators=operators, functions=dict(_FUNCTIONS), names=names)
        self.nodes = {
            ast.Name: self._eval_name,
            ast.UnaryOp: self._eval_unaryop,
            ast.BinOp: self._eval_binop,
            ast.BoolOp: self._eval_boolop,
            ast.Compare: self._eval_compare,
            ast.IfExp: self._eval_ifexp,
            ast.Call: self._eval_call,
            ast.Subscript: self._eval_subscript,
            ast.Attribute: self._eval_attribute,
            ast.Slice: self._eval_slice,
            ast.Constant: self._eval_constant,
            ast.List: self._eval_list,
            ast.Tuple: self._eval_tuple,
            ast.Set: self._eval_set,
            ast.Dict: self._eval_dict,
        }
        self.built = 0

    # What an evaluation builds, counted before it is built.

    def _build(self, size: int) -> None:
        self.built += size
        if self.built > MAX_BUILT:
            raise GateError(f"builds more than {MAX_BUILT:,} characters or items")

    def _int(self, bits: int) -> None:
        if bits > _MAX_INT_BITS:
            raise GateError(f"makes an integer longer than {MAX_INT_DIGITS} digits")

    def _add(self, a: Any, b: Any) -> Any:
        if isinstance(a, str | list | tuple) and isinstance(b, str | list | tuple):
            self._build(_size(a, MAX_BUILT) + _size(b, MAX_BUILT))
        elif isinstance(a, int) and isinstance(b, int):
            self._int(max(_bits(a), _bits(b)) + 1)
        return a + b

    def _mult(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, str | list | tuple):
            a, b = b, a
        if isinstance(a, str | list | tuple) and isinstance(b, int):
            if b > 0:
                self._build(_size(a, MAX_BUILT) * b)
        elif isinstance(a, int) and isinstance(b, int):
            self._int(_bits(a) + _bits(b))
        return a * b

    def _power(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            self._int(math.ceil(b * math.log2(abs(a))))
        return a**b

    def _mod(self, a: Any, b: Any) -> Any:
        if isinstance(a, str):
            raise GateError("string formatting with % is not allowed")
        return a % b

    # The nodes, read with this language's rules.

    def _eval_name(self, node: ast.Name) -> Any:
        if node.id not in self.names:
            raise GateError(f"unknown name {node.id!r}")
        return self.names[node.id]

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_") or hasattr(dict, node.attr):
            raise GateError(f"attribute {node.attr!r} is not allowed")
        value = self._eval(node.value)
        if not isinstance(value, dict):
            raise GateError(f".{node.attr}: a {type(value).__name__} has no keys")
        if node.attr not in value:
            raise GateError(f"no key {node.attr!r}")
        return value[node.attr]

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        key = self._eval(node.slice)
        if isinstance(key, slice) and isinstance(container, str | list | tuple):
            self._build(len(range(*key.indices(len(container)))))
        return container[key]

    def _eval_call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in self.functions or node.keywords:
            raise GateError(f"calls {_shown(ast.unparse(node), 80)}: {_CALLS_WORDS}")
        return self.functions[node.func.id](*[self._eval(arg) for arg in node.args])

    def _eval_list(self, node: ast.List) -> list[Any]:
        self._build(len(node.elts))
        return [self._eval(item) for item in node.elts]

    def _eval_tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        self._build(len(node.elts))
        return tuple(self._eval(item) for item in node.elts)

    def _eval_set(self, node: ast.Set) -> set[Any]:
        self._build(len(node.elts))
        return {self._eval(item) for item in node.elts}

    def _eval_dict(self, node: ast.Dict) -> dict[Any, Any]:
        self._build(len(node.keys))
        if any(key is None for key in node.keys):
            raise GateError("** unpacking is not allowed")
        return {self._eval(key): self._eval(value) for key, value in zip(node.keys, node.values, strict=True)}


def evaluate(expression: str, names: dict[str, Any]) -> bool:
    """The gate's answer for ``names``; raises GateError when it cannot be evaluated."""
    checked = _parsed(expression)
    scope = {
        name: _copy(names.get(name), keys, checked.strings)
        for name, keys in checked.uses.items()
        if name in GATE_NAMES
    }
    evaluator = _Evaluator(scope)
    try:
        return bool(evaluator.eval(checked.text, previously_parsed=checked.tree.body))
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
        MemoryError,
    ) as exc:
        if isinstance(exc, GateError):
            raise
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


__all__ = [
    "GATE_FUNCTIONS",
    "GATE_NAMES",
    "MAX_BUILT",
    "MAX_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_INT_DIGITS",
    "GateError",
    "check_expression",
    "evaluate",
    "needs_person",
]
