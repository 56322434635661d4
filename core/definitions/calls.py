"""The approved call: what a request guards, what a decision releases, what runs.

A request that guards an action (a ``tool`` step with ``requires_approval``,
an agent's held tool call) stores the *rendered* call: the tool's name, its
final arguments (templates resolved when the request is opened), the tool's
input schema and a digest (SHA-256 of the canonical JSON of tool and
arguments). Every channel shows that call. A decision releases one call: the
proposed one, an approver's edit of it, or, for a budget, the call with its
amount argument set to the approved amount. The executor runs the released
call verbatim, never re-rendering templates, and first recomputes its digest:
a call that is not the released one does not run (``CallNotReleased``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pydantic

from core.base.errors import CallNotReleased

# Which argument of a guarded call a budget approval sets (approval_config.amount_argument).
DEFAULT_AMOUNT_ARGUMENT = "amount"
# Parameters a tool receives from Countersign, never from a call's arguments.
INJECTED_PARAMETERS = ("idempotency_key", "tool_context")
OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, no NaN (the digest's input)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str
    )


def call_digest(tool: str, arguments: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"tool": tool, "arguments": arguments}).encode("utf-8")).hexdigest()


def as_stored(value: Any) -> Any:
    """``value`` with its numbers as a JSONB column gives them back, so a call's digest
    holds after the round trip on both databases: PostgreSQL keeps a number as a
    decimal and prints it without an exponent and without a sign on zero, so a float
    Python writes as ``2e+16`` comes back as the integer 20000000000000000 and
    ``-0.0`` as ``0.0`` (the same values: the digest is of what is stored)."""
    if isinstance(value, float):
        if value == 0:
            return 0.0
        text = repr(value)
        if "e" in text and value.is_integer():
            return int(Decimal(text))  # the number as written, not the float's binary value
        return value
    if isinstance(value, dict):
        return {key: as_stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_stored(item) for item in value]
    return value


def injected_argument_problems(arguments: Any, where: str = "args") -> list[str]:
    """Why a call's arguments may not be shown, approved or run: one named like a parameter
    Countersign gives the tool itself (``INJECTED_PARAMETERS``), which would be shown with
    one value while the tool receives Countersign's own."""
    if not isinstance(arguments, dict):
        return []
    return [
        f"{where}.{name}: is Countersign's own parameter (the tool receives the run's {name}), "
        "not an argument a call may give; rename the argument"
        for name in INJECTED_PARAMETERS
        if name in arguments
    ]


def make_call(
    tool: str, arguments: dict[str, Any], input_schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A call as stored with a request: tool, arguments, digest, input schema. A call that
    gives a parameter Countersign injects is refused (``CallNotReleased``): what is shown
    and approved must be what runs."""
    if problems := injected_argument_problems(arguments, "arguments"):
        raise CallNotReleased(f"The call to {tool!r} is refused: {'; '.join(problems)}.")
    # Plain JSON, as the row will hold it and give it back.
    arguments = as_stored(json.loads(canonical_json(arguments)))
    call: dict[str, Any] = {"tool": tool, "arguments": arguments, "digest": call_digest(tool, arguments)}
    if input_schema is not None:
        call["input_schema"] = input_schema
    return call


def verify_call(call: dict[str, Any] | None, *, tool: str | None = None) -> tuple[str, dict[str, Any]]:
    """The released call's tool and arguments, after checking it is what was released.

    Raises ``CallNotReleased`` when the stored digest does not match the call
    (the row was changed after the decision) or the call names another tool
    than the one the step or agent is about to run.
    """
    if not isinstance(call, dict) or not isinstance(call.get("arguments"), dict):
        raise CallNotReleased("No released call is stored for this decision; nothing runs.")
    name, arguments = str(call.get("tool", "")), dict(call["arguments"])
    if call_digest(name, arguments) != call.get("digest"):
        raise CallNotReleased(
            f"The stored call to {name!r} does not match the digest released by the decision; "
            "it was changed after the decision and does not run."
        )
    if tool is not None and name != tool:
        raise CallNotReleased(f"The released call is to {name!r}, not {tool!r}; nothing runs.")
    return name, arguments


# -- input schemas --------------------------------------------------------------------


def function_input_schema(function: Callable[..., Any]) -> dict[str, Any]:
    """JSON Schema of a Python tool's arguments, from its signature and type hints (pydantic).

    Parameters Countersign injects (``idempotency_key``, ``tool_context``)
    are left out; without ``**kwargs`` no other argument is allowed.
    """
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - unresolvable hints: every argument is "any"
        hints = {}
    fields: dict[str, Any] = {}
    open_ended = False
    for name, param in inspect.signature(function).parameters.items():
        if name in INJECTED_PARAMETERS or param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.VAR_KEYWORD:
            open_ended = True
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (hints.get(name, Any), default)
    try:
        model = pydantic.create_model(
            f"{getattr(function, '__name__', 'tool')}_arguments",
            __config__=pydantic.ConfigDict(
                extra="allow" if open_ended else "forbid", arbitrary_types_allowed=True
            ),
            **fields,
        )
        schema: dict[str, Any] = model.model_json_schema()
    except Exception:  # noqa: BLE001 - a hint pydantic cannot express: accept any object
        return dict(OBJECT_SCHEMA)
    schema.setdefault("type", "object")
    schema["additionalProperties"] = open_ended
    return schema


_SMOLAGENTS_TYPES = {"string", "boolean", "integer", "number", "array", "object", "null"}


def smolagents_input_schema(inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """JSON Schema of a smolagents tool's ``inputs``."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in inputs.items():
        kind = spec.get("type", "any")
        kinds = [k for k in (kind if isinstance(kind, list) else [kind]) if k in _SMOLAGENTS_TYPES]
        prop: dict[str, Any] = {
            "title": name.replace("_", " ").capitalize(),
            "description": spec.get("description", ""),
        }
        if kinds and len(kinds) == len(kind if isinstance(kind, list) else [kind]):
            if spec.get("nullable"):
                kinds.append("null")
            prop["type"] = kinds[0] if len(kinds) == 1 else kinds
        properties[name] = prop
        if not spec.get("nullable"):
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


# -- edits and releases -----------------------------------------------------------------


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a JSON number a float can hold (not a bool,
    not a string, not NaN or infinite, not an integer beyond a float's range)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None


def amount_problems(name: str, value: Any, cap: float | None) -> list[str]:
    """Why ``value`` cannot be a budget's approved amount: a positive finite number,
    at most ``cap`` (an approver may only lower it). Checked whatever the request's
    answer schema says (a custom one may say nothing of it)."""
    amount = finite_number(value)
    if amount is None:
        return [f"{name}: must be a number (got {_shown(value)})"]
    if amount <= 0:
        return [f"{name}: must be more than 0 (got {_shown(value)})"]
    if cap is not None and amount > cap:
        return [f"{name}: {_shown(value)} is more than the {cap:g} requested; an approver may only lower it"]
    return []


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, int | float) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def edit_problems(
    call: dict[str, Any],
    data: dict[str, Any],
    *,
    amount_argument: str | None = None,
    cap: float | None = None,
) -> list[str]:
    """Why an answer's edit of ``call`` cannot be released, each naming the argument.

    ``data`` may hold ``tool`` (must be the call's own) and ``arguments``
    (the arguments that change). The edited call must fit the tool's input
    schema; a budget's amount argument may not rise above ``cap``.
    """
    from core.definitions.approval_schema import schema_problems  # jsonschema; approval_schema imports us

    problems: list[str] = []
    other = data.get("tool")
    if other is not None and other != call["tool"]:
        problems.append(
            f"tool: an edit cannot name another tool ({other!r}); only {call['tool']!r} was proposed"
        )
    changes = data.get("arguments")
    if changes is None:
        return problems
    if not isinstance(changes, dict):
        return [*problems, "arguments: must be a mapping of argument names to new values"]
    schema = call.get("input_schema") or OBJECT_SCHEMA
    known = schema.get("properties")
    if isinstance(known, dict) and schema.get("additionalProperties") is False:
        problems.extend(
            f"arguments.{name}: {call['tool']} has no argument named {name!r}"
            for name in sorted(set(changes) - set(known))
        )
    problems.extend(injected_argument_problems(changes, "arguments"))
    if problems:
        return problems
    edited = {**call["arguments"], **changes}
    problems.extend(
        f"arguments.{p}" if not p.startswith("(answer)") else f"arguments: {p.split(': ', 1)[1]}"
        for p in schema_problems(schema, edited)
    )
    if amount_argument is not None and amount_argument in changes and not problems:
        problems.extend(amount_problems(f"arguments.{amount_argument}", changes[amount_argument], cap))
    return problems


def released_call(
    call: dict[str, Any],
    changes: dict[str, Any] | None,
    *,
    amount_argument: str | None = None,
    approved_amount: float | None = None,
) -> dict[str, Any]:
    """The call a decision releases: ``call`` with ``changes`` and the approved amount applied."""
    arguments = {**call["arguments"], **(changes or {})}
    if amount_argument is not None and approved_amount is not None:
        current = finite_number(arguments.get(amount_argument))
        if current is None or approved_amount < current:
            arguments[amount_argument] = _as_given(approved_amount, arguments.get(amount_argument))
    return make_call(call["tool"], arguments, call.get("input_schema"))


def _as_given(amount: float, like: Any) -> float | int:
    """The approved amount as an int when the proposed one was an int and it is whole."""
    return int(amount) if isinstance(like, int) and float(amount).is_integer() else amount


def call_diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Each argument that differs between two calls' arguments: before and after."""
    return [
        {"argument": name, "before": before.get(name), "after": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


__all__ = [
    "DEFAULT_AMOUNT_ARGUMENT",
    "amount_problems",
    "as_stored",
    "call_diff",
    "call_digest",
    "canonical_json",
    "edit_problems",
    "finite_number",
    "function_input_schema",
    "injected_argument_problems",
    "make_call",
    "released_call",
    "smolagents_input_schema",
    "verify_call",
]
