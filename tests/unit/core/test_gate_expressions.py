"""Gate expressions under attack: what anyone who may start a workflow (or make a standing
rule, or an agent profile) can write is one line of a small language, and evaluating it
costs the runner little, however it is written.

Two lines of defence, each tested here: the check (a definition's load, a rule's
creation, a profile's save) refuses any call but ``len``, ``min``, ``max``, ``abs`` and
``round``, comprehensions, lambdas, f-strings and the like, by name; and the evaluation
itself bounds what an expression may build (strings and lists made by ``*`` and ``+``,
integers made by ``*`` and ``**``, ``round``'s digits), so an expression stored before the
check knew better fails closed instead of filling the runner's memory. Evaluation reads
plain copies: the call a gate or rule is evaluated against is never changed.

The sizes below are small enough not to hurt the machine that runs these tests before the
fix (tens of megabytes), and large enough that the memory bound tells the difference.
"""

from __future__ import annotations

import copy
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from core.definitions import gates
from core.definitions.gates import GateError, check_expression, evaluate, needs_person

CALL = {"amount": 1200, "to": "ops@example.com", "lines": [{"sku": "A", "qty": 2}]}


def names() -> dict[str, Any]:
    return {
        "args": copy.deepcopy(CALL),
        "tool": "pay",
        "input": {"country": "US", "note": "x" * 1000, "n": 10**4000},
        "context": {},
        "steps": {"check": {"risk": 0.2}},
        "workflow": {"id": "w", "name": "Pay"},
    }


def evaluated_unchecked(expression: str, scope: dict[str, Any] | None = None) -> tuple[str, int, float]:
    """Evaluate ``expression`` as a stored one would be (the check is not asked first):
    (what came of it, peak bytes allocated, seconds)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome = f"value {evaluate(expression, names() if scope is None else scope)!r}"
    except GateError as exc:
        outcome = f"refused: {exc}"
    finally:
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return outcome, peak, seconds


# -- the check: only the documented calls, by name ------------------------------------------


@pytest.mark.parametrize(
    ("expression", "call"),
    [
        ("len(tool.center(2000000000)) < 0", "tool.center(2000000000)"),
        ("('x'*99999).replace('x','x'*99999) == ''", "('x'*99999).replace('x','x'*99999)"),
        ("'a'.upper() == 'A'", "'a'.upper()"),
        ("args.get('amount') > 5", "args.get('amount')"),
        ("args.update({'amount': 1}) == None", "args.update({'amount': 1})"),
        ("args.to.endswith('@example.com')", "args.to.endswith('@example.com')"),
        ("steps.check.keys() == []", "steps.check.keys()"),
        ("(1).bit_length() > 0", "(1).bit_length()"),
        ("args['lines'][0].copy() == {}", "args['lines'][0].copy()"),
    ],
)
def test_a_method_call_is_refused_naming_the_expression_and_the_call(expression: str, call: str) -> None:
    problem = check_expression(expression)
    assert problem is not None, expression
    assert f"calls {call}" in problem
    assert f"'{expression}'" in problem
    assert "only len, min, max, abs and round" in problem


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("list(args) == []", "unknown name 'list'"),
        ("dict(a=1) == {}", "unknown name 'dict'"),
        ("str(args) == ''", "unknown name 'str'"),
        ("(lambda: 1)() == 1", "a lambda"),
        ("[x for x in args] == []", "a comprehension"),
        ("{k: 1 for k in args} == {}", "a comprehension"),
        ("len(list(x for x in args)) > 0", "a comprehension"),
        ("f'{tool:>2000000000}' == ''", "an f-string"),
        ("f'{tool}' == 'pay'", "an f-string"),
        ("(x := 3) > 2", "an assignment"),
        ("[*args] == []", "unpacking"),
        ("{**args} == {}", "unpacking"),
        ("max(args.amount, key=abs) > 1", "key="),
        ("max(*args) > 1", "unpacking"),
        ("1 << 10000 > 0", "the operator <<"),
        ("args.amount | 1 > 0", "the operator |"),
        ("~args.amount > 0", "the operator ~"),
        ("b'x' == b'x'", "a bytes literal"),
        ("1j == 1j", "a complex number"),
        ("len == len", "len is a function"),
        ("[len] == []", "len is a function"),
        ("args.items == 3", "write args['items']"),
        ("args.__class__ == 1", "attribute '__class__' is not allowed"),
        ("args.amount > 1; 2", "not a valid expression"),
        ("1\x00", "not a valid expression"),
        ("-" * 150 + "1 < 0", "nested more than"),
        ("[" * 120 + "]" * 120 + " == []", "nested more than"),
        ("x" * 1001, "longer than 1000 characters"),
    ],
)
def test_everything_outside_the_language_is_refused_by_name(expression: str, problem: str) -> None:
    found = check_expression(expression)
    assert found is not None and problem in found, (expression, found)


def test_checking_does_not_widen_the_language() -> None:
    """The evaluator once added list, tuple, dict and set to the shared table of allowed
    functions, so after the first evaluation ``list(args)`` passed the check."""
    evaluate("len(args) > 0", names())
    assert check_expression("list(args) == []") is not None
    assert check_expression("set(args) == set()") is not None


@pytest.mark.parametrize(
    "expression",
    [
        "args.amount > 1000 or input.country not in ['DE', 'FR']",
        "args.to[-12:] == '@example.com'",
        "args['lines'][0]['qty'] * 2 <= 4 and len(args) == 3",
        "min(args.amount, 5000) == args.amount and abs(-2) == 2 and round(2.456, 2) == 2.46",
        "max([1, 2, 3]) == 3 and 'A' in {'A', 'B'} and (1, 2) == (1, 2)",
        "args.amount ** 2 > 1000 and args.amount % 100 == 0 and -args.amount < 0",
        "steps.check.risk < 0.5 if tool == 'pay' else False",
        "workflow.name == 'Pay' and context == {} and args.lines[0].sku == 'A'",
        "args['to'] is not None and not args.amount is None",
    ],
)
def test_the_documented_language_still_works(expression: str) -> None:
    assert check_expression(expression) is None, check_expression(expression)
    assert evaluate(expression, names()) is True


# -- the evaluation: bounded even for expressions stored before the check refused them ----


@pytest.mark.parametrize(
    "expression",
    [
        "len(tool.center(20000000)) < 0",  # a stored method call: 20 MB before the fix
        "len(('x'*99999).replace('x','x'*200)) > 0",  # 20 MB before the fix
        "len(tool * 20000000) > 0",
        "len('x' * 100001) > 0",
        "len(['x' * 50000] * 300) > 0",
        "len([[0] * 99999] * 99999) > 0",  # 10 billion comparisons in waiting
        "len(['x' * 99999, 'x' * 99999, 'x' * 99999, 'x' * 99999]) > 0",
        "len(args.to + 'x' * 99999 + 'y' * 99999) > 0",
        "len(input.note[::1] * 200) > 0",
        "'%20000000d' % 1 == ''",
        "f'{tool:>20000000}' == ''",
        "len([x * 99 for x in [input.note] * 50]) > 0",
        "{k: 1 for k in [input.note] * 10001} == {}",
        "len(str(args) * 1000) > 0",
        "list(args) == []",
    ],
)
def test_an_expression_that_would_build_something_large_is_refused_at_once(expression: str) -> None:
    outcome, peak, seconds = evaluated_unchecked(expression)
    assert outcome.startswith("refused"), outcome
    assert peak < 2_000_000, (expression, peak)
    assert seconds < 1.0, (expression, seconds)


@pytest.mark.parametrize(
    "expression",
    [
        "400000 ** 400000 > 0",  # 2.2 million digits
        "9 ** 9 ** 9 > 0",
        "input.n * input.n > 0",  # 8,000 digits
        "round(5, -1000000) == 0",  # computes 10**1000000 first (-10**7: 8 s of CPU)
        "2 ** 100000 > 0",
    ],
)
def test_an_integer_too_long_is_refused_before_it_is_computed(expression: str) -> None:
    outcome, peak, seconds = evaluated_unchecked(expression)
    assert outcome.startswith("refused") and "4300 digits" in outcome, outcome
    assert seconds < 0.5, (expression, seconds)
    assert peak < 2_000_000, (expression, peak)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    for expression in ("-" * 900 + "1 < 0", "not " * 240 + "True", "[" * 190 + "]" * 190 + " == []"):
        outcome, _, _ = evaluated_unchecked(expression)
        assert outcome.startswith("refused") and "nested more than" in outcome, outcome


@pytest.mark.parametrize(
    "expression",
    [
        "args.update({'amount': 1}) == None",
        "args.pop('to') == 1",
        "args.setdefault('bcc', 'attacker@evil.example') == 1",
        "args['lines'].append(1) == 1",
        "args['lines'][0].clear() == 1",
        "args.lines.extend([1]) == 1",
    ],
)
def test_the_call_evaluated_against_is_never_changed(expression: str) -> None:
    scope = names()
    before = copy.deepcopy(scope)
    outcome, _, _ = evaluated_unchecked(expression, scope)
    assert outcome.startswith("refused"), outcome
    assert scope == before


def test_evaluation_reads_plain_copies_even_when_the_check_is_bypassed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Had a method call slipped past the check, it would still change only a copy."""
    scope = names()
    before = copy.deepcopy(scope)
    seen: list[Any] = []
    real = gates.GATE_FUNCTIONS["len"]

    def spying_len(value: Any) -> int:
        seen.append(value)
        return real(value)

    monkeypatch.setitem(gates._FUNCTIONS, "len", spying_len)
    assert evaluate("len(args) == 3 and len(args.lines) == 1", scope) is True
    assert seen[0] == scope["args"] and seen[0] is not scope["args"]
    assert seen[1] is not scope["args"]["lines"]
    assert scope == before


def test_a_lazy_mapping_of_outputs_is_read_by_key() -> None:
    """``steps`` may load an earlier step's output the first time it is named (the
    engine's StepOutputs): evaluation copies what the expression names, by key."""

    class Lazy(dict[str, Any]):
        def __missing__(self, key: str) -> Any:
            if key == "check":
                self[key] = {"risk": 0.9}
                return self[key]
            raise KeyError(key)

        def __contains__(self, key: object) -> bool:
            return key == "check" or dict.__contains__(self, key)

    assert evaluate("steps.check.risk > 0.5", {**names(), "steps": Lazy()}) is True
    assert evaluate("steps['check']['risk'] > 0.5", {**names(), "steps": Lazy()}) is True
    assert evaluate("'check' in steps", {**names(), "steps": Lazy()}) is True
    assert needs_person("steps.other.risk > 0.5", {**names(), "steps": Lazy()})[0] is True


def test_what_is_not_plain_data_fails_closed() -> None:
    class Sneaky:
        amount = 5

    asks, why = needs_person("args.amount < 10", {**names(), "args": Sneaky()})
    assert asks and "not plain data" in why


@pytest.mark.parametrize(
    "attack",
    [
        lambda: evaluate("len(tool.center(2000000000)) < 0", names()),
        lambda: evaluate("len(('x'*99999).replace('x','x'*99999)) < 0", names()),
    ],
)
def test_the_reported_bombs_are_refused_before_anything_is_built(attack: Callable[[], Any]) -> None:
    """The tester's two expressions (2 GB and 10 GB before the fix): refused by the
    check that evaluation runs first. Only run once the other tests pass."""
    started = time.perf_counter()
    with pytest.raises(GateError, match="calls"):
        attack()
    assert time.perf_counter() - started < 0.5
