"""The tools an agent gets, as real ``smolagents.Tool`` subclasses.

Built-ins: ``request_approval`` (ask a person), ``create_checkpoint`` and
``rollback``. Registered Python tools (``core.tools.ToolRegistry``) are
wrapped with inputs declared from their signatures.

A call that needs a person (``request_approval``, a held tool, ``rollback``)
raises ``HoldForApproval``, a ``BaseException``: smolagents turns ordinary
exceptions from tools into observations for the model and would carry on,
whereas this one stops the run before the action happens.
"""

from __future__ import annotations

import inspect
import threading
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smolagents import Tool
from smolagents.tools import validate_tool_arguments

from core.tools import ToolContext, ToolRegistry

if TYPE_CHECKING:
    from core.db import Database


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


@dataclass
class RunContext:
    """What the tools of one agent run share."""

    db: Database | None
    registry: ToolRegistry
    workflow_id: str
    step_name: str
    idempotency_key: str
    held: set[str] = field(default_factory=set)
    # Tool calls made so far in this step (across pauses): their ordinal keys them.
    calls_made: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    # Set once a call is held: no other tool may run after it in this run.
    hold: HoldForApproval | None = None
    # The held call a person approved, which may now run once.
    released: tuple[str, dict[str, Any]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

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


class GuardedTool(Tool):
    """Base of every Countersign agent tool: holds calls that need a person."""

    skip_forward_signature_validation = True
    output_type = "any"
    always_held = False

    def __init__(self, context: RunContext) -> None:
        self.context = context
        super().__init__()

    def forward(self, **kwargs: Any) -> Any:
        ctx = self.context
        if ctx.hold is not None:
            raise ctx.hold  # nothing runs after a held call
        if self.always_held or self.name in ctx.held:
            released = ctx.released
            if released is None or released[0] != self.name or released[1] != kwargs:
                try:
                    validate_tool_arguments(self, kwargs)
                    self.check(kwargs)
                except (TypeError, ValueError) as exc:
                    # The model's own mistake: it sees this and can fix the call.
                    raise ValueError(f"{self.name} was not called: {exc}") from None
                kind = "request" if self.name == "request_approval" else "held"
                ctx.hold = HoldForApproval(self.name, dict(kwargs), kind)
                raise ctx.hold
            ctx.released = None
        result = self.run(**kwargs)
        ctx.record(self.name, dict(kwargs), result)
        return result

    def check(self, kwargs: dict[str, Any]) -> None:
        """Refuse a call a person should not even be asked about (ValueError)."""

    def run(self, **kwargs: Any) -> Any:
        raise NotImplementedError


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
        "approval_type": {"type": "string", "nullable": True,
                          "description": "binary (default), form or budget."},
        "approver": {"type": "string", "nullable": True,
                     "description": "Email or group to ask; the step's approvers if omitted."},
        "context": {"type": "object", "nullable": True,
                    "description": "Facts the approver needs, e.g. {\"amount\": 1200}."},
    }
    always_held = True

    def check(self, kwargs: dict[str, Any]) -> None:
        from core.definitions import parse_approval_config
        from core.errors import DefinitionError

        raw: dict[str, Any] = {"type": kwargs.get("approval_type") or "binary"}
        if kwargs.get("approver"):
            raw["requested_from"] = kwargs["approver"]
        try:
            parse_approval_config(raw)
        except DefinitionError as exc:
            raise ValueError(str(exc)) from None


class CreateCheckpointTool(GuardedTool):
    name = "create_checkpoint"
    description = "Save the workflow's state as a named checkpoint it can be rolled back to."
    inputs = {
        "name": {"type": "string", "description": "Checkpoint name, e.g. before_payment."},
        "description": {"type": "string", "nullable": True, "description": "Why."},
    }

    def run(self, **kwargs: Any) -> Any:
        from core import store
        from core.checkpoints import take_checkpoint

        ctx = self.context
        if ctx.db is None:
            return {"checkpoint": kwargs["name"], "saved": False, "reason": "no database"}
        with ctx.db.session() as session:
            workflow = store.get_workflow(session, ctx.workflow_id, for_update=True)
            checkpoint = take_checkpoint(session, workflow, kwargs["name"],
                                         f"agent:{ctx.step_name}",
                                         description=kwargs.get("description") or "",
                                         step_name=ctx.step_name)
            return {"checkpoint": checkpoint.name, "checkpoint_id": checkpoint.id, "saved": True}


class RollbackTool(GuardedTool):
    name = "rollback"
    description = (
        "Roll the workflow back to a checkpoint (compensating later steps). A person "
        "approves first; the workflow then stays paused at the checkpoint and this "
        "step ends."
    )
    inputs = {
        "checkpoint": {"type": "string", "nullable": True,
                       "description": "Checkpoint name; the latest if omitted."},
        "reason": {"type": "string", "description": "Why roll back."},
    }
    always_held = True

    def run(self, **kwargs: Any) -> Any:
        raise RollbackRequested(kwargs.get("checkpoint"), kwargs["reason"])


_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                               list: "array", tuple: "array", dict: "object"}


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
                param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        kind, nullable = _input_of(hints.get(name, Any))
        spec: dict[str, Any] = {"type": kind, "description": f"{name} ({kind})"}
        if nullable or param.default is not inspect.Parameter.empty:
            spec["nullable"] = True
        inputs[name] = spec
    return inputs


def registry_tool(context: RunContext, name: str) -> GuardedTool:
    """A registered Python tool as an agent tool."""
    registered = context.registry.get(name)

    class RegistryTool(GuardedTool):
        def run(self, **kwargs: Any) -> Any:
            ctx = self.context
            return ctx.registry.call(name, dict(kwargs),
                                     ToolContext(ctx.workflow_id, ctx.step_name, ctx.next_key()))

    RegistryTool.name = name
    RegistryTool.description = registered.description or f"The {name} tool."
    RegistryTool.inputs = registry_inputs(registered.function)
    RegistryTool.output_type = "object"
    return RegistryTool(context)


BUILTIN_TOOL_CLASSES: dict[str, type[GuardedTool]] = {
    "request_approval": RequestApprovalTool,
    "create_checkpoint": CreateCheckpointTool,
    "rollback": RollbackTool,
}


def build_tools(context: RunContext, names: list[str]) -> list[GuardedTool]:
    tools: list[GuardedTool] = [cls(context) for cls in BUILTIN_TOOL_CLASSES.values()]
    for name in names:
        if name not in BUILTIN_TOOL_CLASSES:
            tools.append(registry_tool(context, name))
    return tools
