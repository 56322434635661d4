"""The tools an agent gets, as real ``smolagents.Tool`` subclasses.

Built-ins: ``request_approval`` (ask a person), ``create_checkpoint`` and
``rollback``. Registered Python tools (``core.engine.tools.ToolRegistry``) are
wrapped with inputs declared from their signatures.

A call that needs a person (``request_approval``, a held tool, ``rollback``)
raises ``HoldForApproval``, a ``BaseException``: smolagents turns ordinary
exceptions from tools into observations for the model and would carry on,
whereas this one stops the run before the action happens.

The guard: whether a call may run is decided from state that nothing the
agent is handed leads to.

- A tool object carries only what smolagents shows the model (name,
  description, inputs, output type). What it does (the registered function,
  a checkpoint, a rollback), its run and whether it is held are an entry of
  the module-private ``_BINDINGS``, keyed by the object's identity and made
  when the agent is built (``build_tools``, ``registry_tool``). Setting,
  deleting or copying anything on the object or its classes cannot change
  that entry; a tool object made any other way (from its class, copied,
  unpickled) has no entry and runs nothing (``ToolTampering``).
- Held-tool membership is fixed in that entry when the agent is built.
- A person's decision releases one call: the handler puts its digest
  (``core.definitions.calls.call_digest``) in the module-private ``_RELEASED`` under the
  run's key (its step run's id and a nonce of this build), calls the tool
  (``run_released``) and removes the release afterwards. The held tool runs
  its action only when ``call_digest(name, kwargs)`` equals the released
  digest, which that call consumes.

Model-written code in smolagents' ``LocalPythonExecutor`` reaches a tool as
a ``functools.wraps`` wrapper whose attributes are a copy of the tool's own
(``__wrapped__`` and other dunders are refused by the interpreter), so it sees
the name, description and inputs and nothing else. The interpreter is not a
security sandbox (docs/agents.md).
"""

from __future__ import annotations

import copy
import inspect
import json
import threading
import types
import typing
import uuid
import weakref
from abc import ABCMeta
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, cast

from smolagents import Tool
from smolagents.agent_types import handle_agent_input_types, handle_agent_output_types
from smolagents.tools import validate_tool_arguments

from core.definitions.calls import call_digest, canonical_json
from core.definitions.gates import needs_person as gate_needs_person
from core.engine.tools import ToolContext, ToolRegistry

if TYPE_CHECKING:
    from core.store.db import Database


class HoldForApproval(BaseException):  # noqa: N818 - a control-flow signal, not an error
    """An agent's call waits for a person; the run stops here."""

    def __init__(self, tool: str, arguments: dict[str, Any], kind: str) -> None:
        super().__init__(f"{tool} waits for a person")
        self.tool = tool
        self.arguments = arguments
        self.kind = kind  # "request" (request_approval) or "held" (any held tool)


class RollbackRequested(BaseException):  # noqa: N818 - a control-flow signal
    """An approved ``rollback`` call: the handler rolls the workflow back."""

    def __init__(self, checkpoint: str | None, reason: str) -> None:
        super().__init__(reason)
        self.checkpoint = checkpoint
        self.reason = reason


class ToolTampering(BaseException):  # noqa: N818 - a control-flow signal
    """The agent's code changed, copied or re-created a tool: nothing ran, the step fails.

    A ``BaseException`` so that neither smolagents nor the agent's code (whose
    ``except`` clauses catch ``Exception`` only) can swallow it; once raised in
    a run, every later call of that run's tools raises it again.
    """


@dataclass(eq=False)
class RunContext:
    """What the tools of one agent run share (never handed to the agent)."""

    db: Database | None
    registry: ToolRegistry
    workflow_id: str
    step_name: str
    idempotency_key: str
    # Tools whose calls wait for a person; fixed when the agent is built.
    held: Set[str] = frozenset()
    # A held tool's gate (``held_tools: [{name, when}]``): its call waits only when the
    # expression is true for it (core.definitions.gates; fails closed). Fixed when the agent is built.
    gates: Mapping[str, str] = field(default_factory=dict)
    # What a gate may read besides args and tool: input, context, steps, workflow.
    gate_scope: Mapping[str, Any] = field(default_factory=dict)
    # Held calls whose gate was false and that ran at once, until the handler records them.
    not_required: list[dict[str, Any]] = field(default_factory=list)
    # Tool calls made so far in this step (across pauses): their ordinal keys them.
    calls_made: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    # Set once a call is held: no other tool may run after it in this run.
    hold: HoldForApproval | None = None
    # Set once the agent's code tampered with a tool: nothing runs after it, the step fails.
    tampered: ToolTampering | None = None
    # The step run this agent run executes ("" outside a workflow: the idempotency key).
    run_id: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The key of this build's releases: the step run's id and a nonce, so a release
    # reaches the tools of this build only.
    key: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.held = frozenset(self.held)
        self.gates = types.MappingProxyType(dict(self.gates))
        self.key = f"{self.run_id or self.idempotency_key}#{uuid.uuid4().hex}"

    def next_key(self) -> str:
        with self.lock:
            key = f"{self.idempotency_key}/{self.calls_made}"
            self.calls_made += 1
            return key

    def record(self, tool: str, args: dict[str, Any], result: Any) -> None:
        with self.lock:
            self.records.append({"tool": tool, "args": args, "result": _plain(result)})


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


# -- what the agent hands over: plain data, by exact type ------------------------------------

MAX_DEPTH = 64


class NotPlainData(ValueError):
    """A value from the agent's code that is not plain JSON data; none of its methods ran."""

    def __init__(self, where: str, what: str, *, masquerades: bool) -> None:
        super().__init__(f"{where} {what}")
        self.where = where
        self.what = what
        # An instance of a subclass of a plain type (a list whose __iter__ is the code's):
        # no model hands one over by mistake.
        self.masquerades = masquerades


def _kind_name(kind: type) -> str:
    """A type's name, read without running anything of the code's (a metaclass of its own
    could compute ``__name__``)."""
    return str(type.__getattribute__(kind, "__name__")) if type(kind) is type else "object"


def plain_data(value: Any, where: str = "the value", depth: int = 0) -> Any:
    """``value`` as plain JSON data (dict with text keys, list, str, int, float, bool, None),
    judged by exact type so that no method of an object the agent's code made runs
    (``isinstance`` may read ``__class__``, iteration calls ``__iter__``, JSON encoding
    ``items()`` and ``__str__``). A tuple becomes a list. Raises ``NotPlainData``."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float or kind is bool:
        return value
    if depth >= MAX_DEPTH:
        raise NotPlainData(where, f"is nested more than {MAX_DEPTH} deep", masquerades=False)
    if kind is list or kind is tuple:
        return [plain_data(item, f"{where}[{n}]", depth + 1) for n, item in enumerate(value)]
    if kind is dict:
        plain: dict[str, Any] = {}
        for key, item in dict.items(value):
            if type(key) is not str:
                raise NotPlainData(
                    where,
                    "has a key that is not plain text",
                    masquerades=issubclass(type(key), str),
                )
            plain[key] = plain_data(item, f"{where}[{key!r}]", depth + 1)
        return plain
    masquerades = issubclass(kind, (str, int, float, list, tuple, dict))
    what = "posing as plain data" if masquerades else "not plain data"
    raise NotPlainData(where, f"is a {_kind_name(kind)}, {what}", masquerades=masquerades)


# -- the guard's private state --------------------------------------------------------------

Action = Callable[[RunContext, str, dict[str, Any]], Any]
Check = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, eq=False)
class _Binding:
    """What one tool object is, for the run it was built for."""

    tool: weakref.ReferenceType[GuardedTool]
    context: RunContext
    name: str
    held: bool
    kind: str  # what a hold asks: "request" (request_approval) or "held"
    inputs: dict[str, dict[str, Any]]  # a private copy: the model's edits of tool.inputs do not count
    output_type: str
    check: Check
    action: Action


_STATE_LOCK = threading.Lock()
# id(tool object) -> its binding; an entry goes when its tool object is collected.
_BINDINGS: dict[int, _Binding] = {}
# run key -> (tool, digest) of the one call a person released in that run, until it runs.
_RELEASED: dict[str, tuple[str, str]] = {}


def _binding_of(tool: Any) -> _Binding | None:
    binding = _BINDINGS.get(id(tool))
    return binding if binding is not None and binding.tool() is tool else None


def _bound(tool: Any) -> _Binding:
    binding = _binding_of(tool)
    if binding is None:
        _tampering(
            f"call a {type(tool).__name__} that was not built for the run (re-created "
            "from its class, copied or unpickled)"
        )
    return binding


def _unbind(key: int, ref: weakref.ReferenceType[GuardedTool]) -> None:
    with _STATE_LOCK:
        binding = _BINDINGS.get(key)
        if binding is not None and binding.tool is ref:
            del _BINDINGS[key]


def _running_context() -> RunContext | None:
    """The run whose agent's code is executing on this thread, found by the run's tools
    in smolagents' interpreter frames (``static_tools``); None outside one."""
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_filename.endswith("local_python_executor.py"):
            tools = frame.f_locals.get("static_tools")
            for value in tools.values() if isinstance(tools, dict) else ():
                binding = _binding_of(value)
                if binding is not None:
                    return binding.context
        frame = frame.f_back
    return None


_TOOLS_FIXED = "Countersign's tools cannot be changed, copied or re-created inside a run, and nothing ran"
_NO_INTROSPECTION = (
    "code may not reach the interpreter's or the runner's frames, code or objects, "
    "and nothing more of it runs"
)


def _tampering(
    what: str,
    binding: _Binding | None = None,
    *,
    context: RunContext | None = None,
    why: str = _TOOLS_FIXED,
) -> NoReturn:
    """Refuse a change of a tool or tool class; the run it happens in stops and fails."""
    exc = ToolTampering(f"the agent's code tried to {what}; {why}")
    ctx = binding.context if binding is not None else context or _running_context()
    if ctx is not None:  # latched: a finally: block cannot carry the run on
        with ctx.lock:
            if ctx.tampered is None:
                ctx.tampered = exc
    raise exc


def refuse_code(context: RunContext | None, what: str) -> NoReturn:
    """The agent's code reached for introspection (``core.agents.sandbox``) or handed over an
    object posing as plain data: ``ToolTampering``, latched on its run."""
    _tampering(what, context=context, why=_NO_INTROSPECTION)


def _arguments(binding: _Binding, kwargs: Any, where: str = "the arguments") -> Any:
    """A call's arguments as plain data, before anything reads them (``plain_data``).

    An object posing as plain data is tampering; any other object (a set, a date)
    is the model's mistake: it is told, and nothing was called.
    """
    try:
        arguments = plain_data(kwargs, where)
    except NotPlainData as exc:
        if exc.masquerades:
            _tampering(f"pass {binding.name} an object of its own ({exc})", binding, why=_NO_INTROSPECTION)
        raise ValueError(
            f"{binding.name} was not called: {exc}; pass plain data (text, numbers, "
            "true/false, null, lists and objects of these)"
        ) from None
    return arguments


def _tampered(tool: Any, what: str) -> NoReturn:
    binding = _binding_of(tool)
    name = binding.name if binding is not None else "?"
    _tampering(f"{what} the tool {name!r}", binding)


def _take_release(ctx: RunContext, name: str, kwargs: dict[str, Any]) -> bool:
    """Whether this very call (tool and digest) was released in this run; consumes it."""
    with _STATE_LOCK:
        released = _RELEASED.get(ctx.key)
    if released is None or released[0] != name:
        return False
    try:
        digest = call_digest(name, kwargs)
    except ValueError:  # not JSON (NaN): not the released call
        return False
    with _STATE_LOCK:
        if _RELEASED.get(ctx.key) != (name, digest):
            return False
        del _RELEASED[ctx.key]
    return True


def _dispatch(tool: GuardedTool, kwargs: dict[str, Any]) -> Any:
    """Every call of a Countersign tool, by the model or by the handler, comes here."""
    binding = _bound(tool)
    ctx = binding.context
    with ctx.lock:
        stop: BaseException | None = ctx.tampered or ctx.hold
    if stop is not None:
        raise stop  # nothing runs after tampering or a held call
    # Plain data before any check, digest, JSON or action reads it: no method of an
    # object the agent's code made runs in Countersign's frames.
    kwargs = _arguments(binding, kwargs)
    if binding.held and not _take_release(ctx, binding.name, kwargs):
        try:
            validate_tool_arguments(cast(Tool, types.SimpleNamespace(inputs=binding.inputs)), kwargs)
            binding.check(kwargs)
            arguments = json.loads(canonical_json(kwargs))  # what the person is asked about
        except (TypeError, ValueError) as exc:
            # The model's own mistake: it sees this and can fix the call.
            raise ValueError(f"{binding.name} was not called: {exc}") from None
        gate = ctx.gates.get(binding.name) if binding.kind == "held" else None
        asks, why = (
            (True, "")
            if gate is None
            else gate_needs_person(gate, {**ctx.gate_scope, "args": arguments, "tool": binding.name})
        )
        if asks:
            with ctx.lock:
                if ctx.hold is None:
                    ctx.hold = HoldForApproval(binding.name, arguments, binding.kind)
                raise ctx.hold
        with ctx.lock:  # its gate was false: it runs now, and the trail says why
            ctx.not_required.append({"tool": binding.name, "arguments": arguments, "reason": why})
        kwargs = arguments
    result = binding.action(ctx, binding.name, dict(kwargs))
    ctx.record(binding.name, dict(kwargs), result)
    return result


# -- what the handler and the policy ask -------------------------------------------------------


def run_released(tool: GuardedTool, arguments: dict[str, Any]) -> Any:
    """Run the call a person released (already verified against its digest).

    Its digest is released for this tool's run, the tool is called with
    exactly these arguments, and the release is removed afterwards whether the
    call used it or not: it never outlives this call.
    """
    binding = _bound(tool)
    key = binding.context.key
    with _STATE_LOCK:
        _RELEASED[key] = (binding.name, call_digest(binding.name, arguments))
    try:
        return _dispatch(tool, dict(arguments))
    finally:
        with _STATE_LOCK:
            _RELEASED.pop(key, None)


def needs_person(tool: Any) -> bool:
    """Whether a call of ``tool`` waits for a person (fixed when the agent was built)."""
    binding = _binding_of(tool)
    return binding is not None and binding.held


def tool_inputs(tool: GuardedTool) -> dict[str, dict[str, Any]]:
    """The tool's inputs as built (not as the agent's code may have changed ``tool.inputs``)."""
    return copy.deepcopy(_bound(tool).inputs)


def check_arguments(tool: GuardedTool, arguments: dict[str, Any]) -> None:
    """Raise TypeError or ValueError when ``arguments`` do not fit the tool's inputs as built."""
    validate_tool_arguments(cast(Tool, types.SimpleNamespace(inputs=tool_inputs(tool))), arguments)


# -- the tool classes ------------------------------------------------------------------------------


_VALIDATE_TOOL = Tool.validate_arguments
# Ids of the tool classes, sealed once this module is loaded; no subclass after that.
_SEALED: set[int] = set()
_CLOSED = False


class _SealedToolType(ABCMeta):
    """The metaclass of Countersign's tool classes: no attribute set or deleted once sealed."""

    def __setattr__(cls, name: str, value: Any) -> None:
        if id(cls) in _SEALED:
            _tampering(f"set {name!r} on the tool class {type.__getattribute__(cls, '__name__')}")
        type.__setattr__(cls, name, value)

    def __delattr__(cls, name: str) -> None:
        if id(cls) in _SEALED:
            _tampering(f"delete {name!r} from the tool class {type.__getattribute__(cls, '__name__')}")
        type.__delattr__(cls, name)


class GuardedTool(Tool, metaclass=_SealedToolType):
    """Base of every Countersign agent tool: holds calls that need a person.

    Instances are built by ``build_tools`` and ``registry_tool`` only and
    cannot be changed, copied or re-created; ``forward`` and ``__call__`` go to
    the guard. The special methods and the ``Tool`` methods smolagents calls
    are defined here, so a change of smolagents' ``Tool`` class does not reach
    these objects. None of this decides whether a call runs (the binding
    does); it makes tampering fail with ``ToolTampering`` instead of going
    unnoticed.
    """

    skip_forward_signature_validation = True
    output_type = "any"
    output_schema = None
    is_initialized = True
    # Shown to the model and in the task; whether a call waits is the binding's ``held``.
    always_held = False

    to_code_prompt = Tool.to_code_prompt
    to_tool_calling_prompt = Tool.to_tool_calling_prompt
    validate_arguments = Tool.validate_arguments

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if _CLOSED:
            _tampering(f"subclass a tool class (as {type.__getattribute__(cls, '__name__')})")
        super().__init_subclass__(**kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _tampering(f"create a {type(self).__name__} (tools are built for a run by Countersign)")

    def __getattribute__(self, name: str) -> Any:
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"a Countersign tool has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        _tampered(self, f"set {name!r} on")

    def __delattr__(self, name: str) -> None:
        _tampered(self, f"delete {name!r} from")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        _tampered(self, "copy")

    def __reduce__(self) -> NoReturn:
        _tampered(self, "copy")

    def __copy__(self) -> NoReturn:
        _tampered(self, "copy")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        _tampered(self, "copy")

    def __getstate__(self) -> NoReturn:
        _tampered(self, "copy")

    def __repr__(self) -> str:
        binding = _binding_of(self)
        return f"<Countersign tool {binding.name if binding is not None else '(unbound)'}>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return object.__hash__(self)

    def __bool__(self) -> bool:
        return True

    def __dir__(self) -> list[str]:
        return sorted(object.__dir__(self))

    def setup(self) -> None:
        """Nothing to set up (smolagents' Tool.setup would set an attribute)."""

    def __call__(self, *args: Any, sanitize_inputs_outputs: bool = False, **kwargs: Any) -> Any:
        binding = _bound(self)
        # Plain data first: nothing below calls a method of the code's objects.
        positional: list[Any] = _arguments(binding, args, "the positional arguments")
        kwargs = _arguments(binding, kwargs)
        # As smolagents' Tool.__call__: one dict of the tool's inputs is its keyword arguments.
        if (
            len(positional) == 1
            and not kwargs
            and type(positional[0]) is dict
            and all(key in binding.inputs for key in positional[0])
        ):
            kwargs = positional.pop()
        if positional:
            raise TypeError(f"{binding.name} takes keyword arguments: {', '.join(binding.inputs) or 'none'}")
        sanitize = sanitize_inputs_outputs is True  # not the truth of an object of the code's
        if sanitize:
            _, kwargs = handle_agent_input_types(**kwargs)
        outputs = _dispatch(self, kwargs)
        if sanitize:
            outputs = handle_agent_output_types(outputs, binding.output_type)
        return outputs

    def forward(self, **kwargs: Any) -> Any:
        return _dispatch(self, kwargs)


class RequestApprovalTool(GuardedTool):
    name = "request_approval"
    description = (
        "Ask a person to approve before you act. The run pauses until they answer; "
        "the answer (approved or rejected, their comment and any data they give) "
        "comes back as this tool's result."
    )
    inputs = {
        "title": {"type": "string", "description": "Short title of the decision."},
        "description": {"type": "string", "description": "What you want to do and why."},
        "approval_type": {
            "type": "string",
            "nullable": True,
            "description": "binary (default), form or budget.",
        },
        "approver": {
            "type": "string",
            "nullable": True,
            "description": "Email or group to ask; the step's approvers if omitted.",
        },
        "required_approver": {
            "type": "string",
            "nullable": True,
            "description": "The seed's name for approver (either may be given).",
        },
        "context": {
            "type": "object",
            "nullable": True,
            "description": 'Facts the approver needs, e.g. {"amount": 1200}.',
        },
    }
    always_held = True


class CreateCheckpointTool(GuardedTool):
    name = "create_checkpoint"
    description = "Save the workflow's state as a named checkpoint it can be rolled back to."
    inputs = {
        "name": {"type": "string", "description": "Checkpoint name, e.g. before_payment."},
        "description": {"type": "string", "nullable": True, "description": "Why."},
    }


class RollbackTool(GuardedTool):
    name = "rollback"
    description = (
        "Roll the workflow back to a checkpoint (compensating later steps). A person "
        "approves first; the workflow then stays paused at the checkpoint and this "
        "step ends."
    )
    inputs = {
        "checkpoint": {
            "type": "string",
            "nullable": True,
            "description": "Checkpoint name; the latest if omitted.",
        },
        "reason": {"type": "string", "description": "Why roll back."},
    }
    always_held = True


class RegistryTool(GuardedTool):
    """A registered Python tool; its name, description and inputs are the instance's."""

    output_type = "object"


# -- what the tools do (reached through a binding only) ---------------------------------------


def _no_check(kwargs: dict[str, Any]) -> None:
    """Nothing to refuse before a person is asked."""


def _check_approval_request(kwargs: dict[str, Any]) -> None:
    """Refuse a request a person should not even be asked about (ValueError)."""
    from core.base.errors import DefinitionError
    from core.definitions.workflow import parse_approval_config

    raw: dict[str, Any] = {"type": kwargs.get("approval_type") or "binary"}
    approver = requested_approver(kwargs)
    if approver:
        raw["requested_from"] = approver
    try:
        parse_approval_config(raw)
    except DefinitionError as exc:
        raise ValueError(str(exc)) from None


def requested_approver(arguments: dict[str, Any]) -> str | None:
    """Who a ``request_approval`` call asks: ``approver``, or the seed's ``required_approver``."""
    return arguments.get("approver") or arguments.get("required_approver") or None


def _ask_only(ctx: RunContext, name: str, kwargs: dict[str, Any]) -> Any:
    raise NotImplementedError(f"{name} asks a person; the decision is its result")


def _take_checkpoint(ctx: RunContext, name: str, kwargs: dict[str, Any]) -> Any:
    from core.engine.checkpoints import refuse_reserved_name, take_checkpoint
    from core.records import rows as store

    refuse_reserved_name(kwargs["name"])  # the engine's after:/before: names: the model is told
    if ctx.db is None:
        return {"checkpoint": kwargs["name"], "saved": False, "reason": "no database"}
    with ctx.db.session() as session:
        workflow = store.get_workflow(session, ctx.workflow_id, for_update=True)
        checkpoint = take_checkpoint(
            session,
            workflow,
            kwargs["name"],
            f"agent:{ctx.step_name}",
            description=kwargs.get("description") or "",
            step_name=ctx.step_name,
        )
        return {"checkpoint": checkpoint.name, "checkpoint_id": checkpoint.id, "saved": True}


def _roll_back(ctx: RunContext, name: str, kwargs: dict[str, Any]) -> Any:
    raise RollbackRequested(kwargs.get("checkpoint"), kwargs["reason"])


def _call_registered(ctx: RunContext, name: str, kwargs: dict[str, Any]) -> Any:
    return ctx.registry.call(name, dict(kwargs), ToolContext(ctx.workflow_id, ctx.step_name, ctx.next_key()))


_BUILTIN_ACTIONS: dict[str, tuple[Check, Action]] = {
    "request_approval": (_check_approval_request, _ask_only),
    "create_checkpoint": (_no_check, _take_checkpoint),
    "rollback": (_no_check, _roll_back),
}


_JSON_TYPES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
}


def _input_of(annotation: Any) -> tuple[str, bool]:
    """JSON type of a parameter annotation, and whether None is allowed."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        kind = _input_of(args[0])[0] if len(args) == 1 else "any"
        return kind, nullable
    base = origin or annotation
    return _JSON_TYPES.get(base, "any"), False


def registry_inputs(function: Any) -> dict[str, dict[str, Any]]:
    """smolagents ``inputs`` declared from a registered function's signature."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - unresolvable hints: fall back to "any"
        hints = {}
    inputs: dict[str, dict[str, Any]] = {}
    for name, param in inspect.signature(function).parameters.items():
        if name in ("idempotency_key", "tool_context") or param.kind in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            continue
        kind, nullable = _input_of(hints.get(name, Any))
        spec: dict[str, Any] = {"type": kind, "description": f"{name} ({kind})"}
        if nullable or param.default is not inspect.Parameter.empty:
            spec["nullable"] = True
        inputs[name] = spec
    return inputs


def _bind(
    cls: type[GuardedTool],
    context: RunContext,
    *,
    name: str,
    description: str,
    inputs: dict[str, dict[str, Any]],
    output_type: str,
    check: Check,
    action: Action,
) -> GuardedTool:
    """A tool object for ``context``'s run, with its binding; the only way one is made."""
    tool = object.__new__(cls)
    shown = {
        "name": name,
        "description": description,
        "inputs": copy.deepcopy(dict(inputs)),
        "output_type": output_type,
        "is_initialized": True,
    }
    for attribute, value in shown.items():
        object.__setattr__(tool, attribute, value)
    _VALIDATE_TOOL(tool)  # smolagents' checks: a valid name, well-formed inputs and output type
    ref = weakref.ref(tool)
    binding = _Binding(
        tool=ref,
        context=context,
        name=name,
        held=cls.always_held or name in context.held,
        kind="request" if name == "request_approval" else "held",
        inputs=copy.deepcopy(dict(inputs)),
        output_type=output_type,
        check=check,
        action=action,
    )
    with _STATE_LOCK:
        _BINDINGS[id(tool)] = binding
    weakref.finalize(tool, _unbind, id(tool), ref)
    return tool


def registry_tool(context: RunContext, name: str) -> GuardedTool:
    """A registered Python tool as an agent tool of ``context``'s run."""
    registered = context.registry.get(name)
    return _bind(
        RegistryTool,
        context,
        name=name,
        description=registered.description or f"The {name} tool.",
        inputs=registry_inputs(registered.function),
        output_type="object",
        check=_no_check,
        action=_call_registered,
    )


BUILTIN_TOOL_CLASSES: dict[str, type[GuardedTool]] = {
    "request_approval": RequestApprovalTool,
    "create_checkpoint": CreateCheckpointTool,
    "rollback": RollbackTool,
}

_SEALED.update(id(cls) for cls in (GuardedTool, RegistryTool, *BUILTIN_TOOL_CLASSES.values()))
_CLOSED = True


def build_tools(context: RunContext, names: list[str]) -> list[GuardedTool]:
    """The built-in tools and the registered tools ``names`` for ``context``'s run."""
    tools: list[GuardedTool] = []
    for name, cls in BUILTIN_TOOL_CLASSES.items():
        check, action = _BUILTIN_ACTIONS[name]
        tools.append(
            _bind(
                cls,
                context,
                name=name,
                description=cls.description,
                inputs=cls.inputs,
                output_type=cls.output_type,
                check=check,
                action=action,
            )
        )
    for name in names:
        if name not in BUILTIN_TOOL_CLASSES:
            tools.append(registry_tool(context, name))
    return tools
