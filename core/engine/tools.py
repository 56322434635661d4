"""Registered Python tools that ``tool`` steps, agents and compensations call.

A tool is a plain function of keyword arguments, registered with the public
decorator ``core.engine.tools.tool``::

    from core.engine.tools import tool

    @tool(compensate="refund_card")
    def charge_card(amount: float, currency: str, idempotency_key: str) -> dict:
        "Charge the customer's card."
        ...

Its input schema (what an approver's edit is checked against) is derived
from the signature and type hints. If it declares an ``idempotency_key``
parameter it receives one that is stable across re-runs of the same step
(after a crash, a runner takes over and runs the step again with the same
key), so it can drop duplicates on its side. ``compensate`` names the tool
that undoes it on rollback, for steps that name none themselves.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.base.errors import ToolNotFound
from core.definitions.calls import function_input_schema

ToolFunction = Callable[..., Any]
TOOL_MODULES_ENV = "COUNTERSIGN_TOOL_MODULES"


@dataclass
class RegisteredTool:
    name: str
    function: ToolFunction
    description: str = ""
    wants_key: bool = False
    wants_context: bool = False
    parameters: list[str] = field(default_factory=list)
    # JSON Schema of the arguments (pydantic, from the signature and type hints).
    input_schema: dict[str, Any] = field(default_factory=dict)
    # The tool that undoes this one on rollback, when a step names none.
    compensate: str | None = None


@dataclass(frozen=True)
class ToolContext:
    workflow_id: str
    step_name: str
    idempotency_key: str


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, RegisteredTool] = {}

    def register(
        self,
        name: str | None = None,
        *,
        description: str = "",
        compensate: str | ToolFunction | None = None,
    ) -> Callable[[ToolFunction], ToolFunction]:
        """Decorator: ``@registry.register("charge_card")``."""

        def decorate(function: ToolFunction) -> ToolFunction:
            self.add(name or function.__name__, function, description=description, compensate=compensate)
            return function

        return decorate

    def add(
        self,
        name: str,
        function: ToolFunction,
        *,
        description: str = "",
        compensate: str | ToolFunction | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a tool needs a non-empty name")
        if callable(compensate):
            # A compensation given as a function is registered beside the tool.
            compensation_name = getattr(compensate, "__name__", f"{name}_compensate")
            self.add(compensation_name, compensate)
            compensate = compensation_name
        params = inspect.signature(function).parameters
        self._tools[name] = RegisteredTool(
            name=name,
            function=function,
            description=description or (inspect.getdoc(function) or "").split("\n")[0],
            wants_key="idempotency_key" in params,
            wants_context="tool_context" in params,
            parameters=[p for p in params if p not in ("idempotency_key", "tool_context")],
            input_schema=function_input_schema(function),
            compensate=compensate,
        )

    def get(self, name: str) -> RegisteredTool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ToolNotFound(f"No tool is registered as {name!r} (registered: {known}).") from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def call(self, name: str, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        tool = self.get(name)
        kwargs = dict(args)
        if tool.wants_key:
            kwargs["idempotency_key"] = context.idempotency_key
        if tool.wants_context:
            kwargs["tool_context"] = context
        result = tool.function(**kwargs)
        return result if isinstance(result, dict) else {"result": result}


def load_tool_modules(modules: str | None = None) -> None:
    """Import the modules named in COUNTERSIGN_TOOL_MODULES so they register tools."""
    for name in (modules if modules is not None else os.environ.get(TOOL_MODULES_ENV, "")).split(","):
        if name.strip():
            importlib.import_module(name.strip())


_TEMPLATE = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*\}")


def _lookup(scope: dict[str, Any], path: str) -> Any:
    value: Any = scope
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(path)
    return value


def render_args(value: Any, scope: dict[str, Any]) -> Any:
    """Fill ``${input.x}``, ``${context.x}`` and ``${steps.name.key}`` references.

    A string that is exactly one reference takes the referenced value with
    its type; references inside longer strings are formatted as text.
    """
    if isinstance(value, dict):
        return {k: render_args(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render_args(v, scope) for v in value]
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value.strip())
        if whole:
            return _lookup(scope, whole.group(1))
        return _TEMPLATE.sub(lambda m: str(_lookup(scope, m.group(1))), value)
    return value


default_registry = ToolRegistry()


def tool(
    name: str | ToolFunction | None = None,
    *,
    description: str = "",
    compensate: str | ToolFunction | None = None,
    registry: ToolRegistry | None = None,
) -> Any:
    """Register a function as a tool that workflows and agents can call.

    ``@tool`` or ``@tool("name", description=..., compensate=...)``. The
    tool's name defaults to the function's, its description to the first
    line of its docstring; its input schema comes from the signature.
    ``compensate`` (a tool name, or a function registered beside it) undoes
    it on rollback. ``registry`` defaults to the one every runner uses.
    """
    target = registry if registry is not None else default_registry
    if callable(name):  # bare @tool
        function = name
        target.add(function.__name__, function, description=description, compensate=compensate)
        return function
    return target.register(name, description=description, compensate=compensate)
