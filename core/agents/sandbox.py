"""The interpreter a code agent's code runs in: smolagents' ``LocalPythonExecutor``
with the introspection it leaves open closed.

smolagents 1.26 refuses reading ``__dunder__`` attributes and nothing else, so code
could read a generator's ``gi_frame`` and walk ``f_back`` / ``f_locals`` up the
runner's own frames to its tool registry and database (probe D, finding 1). A
frame also leads to every module through ``f_globals``, so no later check could
hold once code holds one. ``GuardedExecutor`` is the executor of every code agent
on the local executor (workflow steps, ``core.agents.handler``; chat sessions,
``core.conversations.runner``). Before a snippet runs it reads the snippet's syntax
tree and:

- refuses any attribute named as the internals of frames, code objects, generators,
  coroutines, async generators and tracebacks (``INTROSPECTION``: ``f_back``,
  ``f_locals``, ``f_globals``, ``gi_frame``, ``cr_frame``, ``tb_frame``, every
  ``co_*`` ...), read, set or deleted: the snippet is tampering
  (``ToolTampering``), none of it runs and the run fails;
- refuses the interpreter's own state names (``_print_outputs``,
  ``_operations_count``), whose methods smolagents calls;
- allows ``str.format`` / ``format_map`` only on a literal string whose fields read
  no introspection attribute (a format string reads attributes by name);
  ``format`` of anything else is refused: an f-string does the same.

The code's ``getattr``, ``hasattr`` and ``setattr`` refuse the same names, and a
name that is not exactly a ``str`` (a ``str`` subclass could lie to smolagents'
dunder check). Setting a ``__dunder__`` attribute is left to the objects, as in
smolagents: Countersign's tools and their classes refuse it (``ToolTampering``).
What a snippet leaves (its last value, its final answer) is handed on as plain
data only (``core.agents.tools.plain_data``), so neither smolagents nor Countersign
calls a method of an object the code made. Imports the workflow language refuses
(``core.definitions.agents``) are refused here too, for settings stored before.

This narrows the interpreter; it does not make it a sandbox (docs/agents.md).
"""

from __future__ import annotations

import ast
import string
from collections.abc import Callable
from typing import Any, NoReturn

from smolagents.local_python_executor import (
    CodeOutput,
    InterpreterError,
    LocalPythonExecutor,
    nodunder_getattr,
)

from core.agents.tools import NotPlainData, RunContext, plain_data, refuse_code
from core.base.errors import DefinitionError
from core.definitions.agents import check_import

# Attributes that lead from a value to the interpreter's or the runner's frames and code.
FRAME_ATTRIBUTES = frozenset(
    {
        "f_back",
        "f_builtins",
        "f_code",
        "f_globals",
        "f_lasti",
        "f_lineno",
        "f_locals",
        "f_trace",
        "f_trace_lines",
        "f_trace_opcodes",
    }
)
OTHER_ATTRIBUTES = frozenset(
    {
        "cell_contents",
        "func_closure",
        "func_code",
        "func_globals",
        "im_func",
        "im_self",
        "_getframe",
        "_current_frames",
        "currentframe",
        "settrace",
        "setprofile",
        "gettrace",
        "getprofile",
    }
)
# Generators (gi_frame, gi_code, gi_yieldfrom), coroutines (cr_*), async generators
# (ag_*), tracebacks (tb_frame, tb_next) and code objects (co_*).
INTROSPECTION_PREFIXES = ("ag_", "co_", "cr_", "gi_", "tb_")
# The interpreter's own entries in the code's state: smolagents calls their methods.
STATE_NAMES = frozenset({"_print_outputs", "_operations_count"})
FORMAT_METHODS = frozenset({"format", "format_map"})


def is_introspection(name: str) -> bool:
    """Whether an attribute of this name is refused to a code agent's code."""
    return name in FRAME_ATTRIBUTES or name in OTHER_ATTRIBUTES or name.startswith(INTROSPECTION_PREFIXES)


def _format_fields(template: str) -> list[str]:
    """The attribute names the fields of a format string read (nested specs included)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return []  # not a valid format string: str.format refuses it itself
    names: list[str] = []
    for _, field_name, spec, _ in parsed:
        if field_name:
            first, rest = _formatter_field_name_split(field_name)
            del first
            names.extend(str(key) for is_attribute, key in rest if is_attribute)
        if spec:
            names.extend(_format_fields(spec))
    return names


def _formatter_field_name_split(field_name: str) -> tuple[Any, list[tuple[bool, Any]]]:
    import _string

    first, rest = _string.formatter_field_name_split(field_name)
    try:
        return first, list(rest)
    except ValueError:
        return first, []


class _Refusal:
    """What a snippet may not do, found in its syntax tree."""

    def __init__(self, refuse: Callable[[str], NoReturn]) -> None:
        self.refuse = refuse

    def check(self, code: str) -> None:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return  # the interpreter reports it
        allowed_format: set[int] = set()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in FORMAT_METHODS
                and isinstance(node.func.value, ast.Constant)
                and isinstance(node.func.value.value, str)
            ):
                for name in _format_fields(node.func.value.value):
                    self._attribute(name)
                allowed_format.add(id(node.func))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                self._attribute(node.attr)
                if node.attr in FORMAT_METHODS and id(node) not in allowed_format:
                    raise InterpreterError(
                        f"{node.attr}() may only be called on a literal string here "
                        "(a format string reads attributes by name); use an f-string"
                    )
            elif isinstance(node, ast.Name) and node.id in STATE_NAMES:
                raise InterpreterError(f"The name {node.id} belongs to the interpreter")

    def _attribute(self, name: str) -> None:
        if is_introspection(name):
            self.refuse(f"use the introspection attribute {name!r}")


def _attribute_name(name: Any, refuse: Callable[[str], NoReturn], builtin: str) -> str:
    if type(name) is not str:  # a str subclass could answer startswith() as it likes
        raise InterpreterError(f"{builtin}() takes an attribute name as plain text")
    if is_introspection(name):
        refuse(f"use the introspection attribute {name!r} through {builtin}()")
    if name in FORMAT_METHODS:
        raise InterpreterError(f"{builtin}() may not take {name}; use an f-string")
    return name


def attribute_builtins(refuse: Callable[[str], NoReturn]) -> dict[str, Callable[..., Any]]:
    """``getattr``, ``hasattr`` and ``setattr`` for the code: the names above refused."""

    def getattr_(obj: Any, name: Any, default: Any = None) -> Any:
        # smolagents' own getattr refuses __dunder__ names as before.
        return nodunder_getattr(obj, _attribute_name(name, refuse, "getattr"), default)

    def hasattr_(obj: Any, name: Any) -> bool:
        return hasattr(obj, _attribute_name(name, refuse, "hasattr"))

    def setattr_(obj: Any, name: Any, value: Any) -> None:
        setattr(obj, _attribute_name(name, refuse, "setattr"), value)

    getattr_.__name__, hasattr_.__name__, setattr_.__name__ = "getattr", "hasattr", "setattr"
    return {"getattr": getattr_, "hasattr": hasattr_, "setattr": setattr_}


class GuardedExecutor(LocalPythonExecutor):
    """smolagents' local executor for one agent run, refusing introspection (above)."""

    def __init__(
        self, additional_authorized_imports: list[str], *, context: RunContext | None, **kwargs: Any
    ) -> None:
        for name in additional_authorized_imports:
            try:
                check_import(name)
            except ValueError as exc:
                raise DefinitionError([f"authorized_imports: {exc}"]) from None
        super().__init__(additional_authorized_imports, **kwargs)

        def refuse(what: str) -> NoReturn:
            refuse_code(context, what)

        self._refuse = refuse
        self._refusal = _Refusal(refuse)

    def send_tools(self, tools: dict[str, Any]) -> None:
        super().send_tools(tools)
        assert self.static_tools is not None
        self.static_tools.update(attribute_builtins(self._refuse))

    def __call__(self, code_action: str) -> CodeOutput:
        self._refusal.check(code_action)
        out = super().__call__(code_action)
        try:
            output = plain_data(out.output, "the final answer" if out.is_final_answer else "the value")
        except NotPlainData as exc:
            if exc.masquerades:
                self._refuse(f"hand on an object of its own ({exc})")
            if out.is_final_answer:
                raise InterpreterError(
                    f"final_answer takes plain data (text, numbers, true/false, null, lists "
                    f"and objects of these): {exc}"
                ) from None
            output = f"({exc}; print() what you need to see)"
        return CodeOutput(output=output, logs=out.logs, is_final_answer=out.is_final_answer)


def guarded_executor(
    authorized_imports: list[str], executor_type: str, context: RunContext | None
) -> GuardedExecutor | None:
    """The executor for a code agent: ours for ``local``, None (smolagents' own) otherwise."""
    if executor_type != "local":
        return None
    return GuardedExecutor(list(authorized_imports), context=context)


__all__ = ["GuardedExecutor", "guarded_executor", "is_introspection"]
