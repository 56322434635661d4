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
  no introspection attribute and nothing starting with ``_`` (a format string reads
  attributes by name, dunders included); ``format`` of anything else is refused: an
  f-string does the same;
- rewrites every attribute the snippet sets or deletes, and every ``_private`` one it
  reads, into a call of the guarded builtins (``rewrite_attribute_access``), which
  allow it only on the classes the code defines and their instances (``made_here``):
  the process's shared classes (``collections.abc.Mapping``, reached by
  ``type(x).mro()``) and modules are never changed by a run (probe S).

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
                    if name.startswith("_"):  # str.format's getattr skips smolagents' dunder check
                        self.refuse(f"read the attribute {name!r} through a format string")
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


# The module smolagents' interpreter creates the code's classes in (``type()`` called
# from its class-definition evaluator): what the code made, as opposed to what it was
# given or imported (the process's own classes and objects, shared by every run).
MADE_HERE = LocalPythonExecutor.__module__
# The code's private-attribute reader, the target of the rewrite below.
PRIVATE_GETTER = "_countersign_attribute"


def made_here(obj: Any) -> bool:
    """Whether ``obj`` is a class the code defined or an instance of one."""
    cls = obj if isinstance(obj, type) else type(obj)
    return cls.__module__ == MADE_HERE


def _own_objects_only(obj: Any, name: str, what: str, refuse: Callable[[str], NoReturn]) -> None:
    # A class shared by the process (collections.abc.Mapping, reached by type(x).mro())
    # patched by one run would run its code in every later one, inside the runner; a
    # module's private state (re._cache) is shared the same way. Tampering, as for tools.
    if not made_here(obj):
        refuse(
            f"{what} {name!r} of an object it did not make (code may change, or read the "
            "private attributes of, only objects of the classes it defines itself)"
        )


class _StoresThroughBuiltins(ast.NodeTransformer):
    """Rewrites every attribute the code sets or deletes, and every private attribute it
    reads, into a call of the guarded builtins, so the rule above holds at run time:
    smolagents sets attributes with the real ``setattr`` and reads ``_private`` ones
    freely. Assignments it cannot rewrite to a call are refused."""

    def __init__(self) -> None:
        self.count = 0

    def _temp(self) -> str:
        self.count += 1
        return f"countersign_value_{self.count}"

    @staticmethod
    def _call(function: str, *args: ast.expr) -> ast.Expr:
        return ast.Expr(ast.Call(func=ast.Name(function, ast.Load()), args=list(args), keywords=[]))

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        private = node.attr.startswith("_") and not node.attr.startswith("__")
        if isinstance(node.ctx, ast.Load) and private:
            return ast.Call(
                func=ast.Name(PRIVATE_GETTER, ast.Load()),
                args=[node.value, ast.Constant(node.attr)],
                keywords=[],
            )
        return node

    def visit_Assign(self, node: ast.Assign) -> Any:
        self.generic_visit(node)
        if not any(isinstance(t, ast.Attribute) for t in node.targets):
            return node
        temp = self._temp()
        out: list[ast.stmt] = [ast.Assign([ast.Name(temp, ast.Store())], node.value)]
        for target in node.targets:
            if isinstance(target, ast.Attribute):
                out.append(
                    self._call("setattr", target.value, ast.Constant(target.attr), ast.Name(temp, ast.Load()))
                )
            else:
                out.append(ast.Assign([target], ast.Name(temp, ast.Load())))
        return out

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        self.generic_visit(node)
        if not isinstance(node.target, ast.Attribute):
            return node
        target = node.target
        current = ast.Call(
            func=ast.Name(PRIVATE_GETTER, ast.Load()),
            args=[target.value, ast.Constant(target.attr)],
            keywords=[],
        )
        return self._call(
            "setattr", target.value, ast.Constant(target.attr), ast.BinOp(current, node.op, node.value)
        )

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        self.generic_visit(node)
        if not isinstance(node.target, ast.Attribute):
            return node
        if node.value is None:
            return ast.Pass()
        return self._call("setattr", node.target.value, ast.Constant(node.target.attr), node.value)

    def visit_Delete(self, node: ast.Delete) -> Any:
        self.generic_visit(node)
        if not any(isinstance(t, ast.Attribute) for t in node.targets):
            return node
        return [
            self._call("delattr", t.value, ast.Constant(t.attr))
            if isinstance(t, ast.Attribute)
            else ast.Delete([t])
            for t in node.targets
        ]


def rewrite_attribute_access(code: str) -> str:
    """``code`` with attribute stores, deletes and private reads going through the guarded
    builtins; an attribute set any other way (a loop target, an unpacking, ``with ... as``)
    is refused."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code  # the interpreter reports it
    tree = ast.fix_missing_locations(_StoresThroughBuiltins().visit(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
            raise InterpreterError(
                f"Set the attribute {node.attr!r} in an assignment of its own (obj.{node.attr} = value)"
            )
    return ast.unparse(tree)


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
        name = _attribute_name(name, refuse, "getattr")
        if name.startswith("_") and not name.startswith("__"):  # dunders: smolagents refuses them
            _own_objects_only(obj, name, "read the private attribute", refuse)
        # smolagents' own getattr refuses __dunder__ names as before.
        return nodunder_getattr(obj, name, default)

    def hasattr_(obj: Any, name: Any) -> bool:
        name = _attribute_name(name, refuse, "hasattr")
        if name.startswith("_") and not name.startswith("__"):
            _own_objects_only(obj, name, "read the private attribute", refuse)
        return hasattr(obj, name)

    def setattr_(obj: Any, name: Any, value: Any) -> None:
        name = _attribute_name(name, refuse, "setattr")
        _own_objects_only(obj, name, "set the attribute", refuse)
        if name.startswith("__"):
            raise InterpreterError(f"setattr may not set {name!r}")
        setattr(obj, name, value)

    def delattr_(obj: Any, name: Any) -> None:
        name = _attribute_name(name, refuse, "delattr")
        _own_objects_only(obj, name, "delete the attribute", refuse)
        if name.startswith("__"):
            raise InterpreterError(f"delattr may not delete {name!r}")
        delattr(obj, name)

    def private_attribute(obj: Any, name: Any) -> Any:
        # obj._name, rewritten (rewrite_attribute_access): an AttributeError when missing.
        name = _attribute_name(name, refuse, "reading")
        _own_objects_only(obj, name, "read the private attribute", refuse)
        return getattr(obj, name)

    getattr_.__name__, hasattr_.__name__, setattr_.__name__ = "getattr", "hasattr", "setattr"
    delattr_.__name__, private_attribute.__name__ = "delattr", PRIVATE_GETTER
    return {
        "getattr": getattr_,
        "hasattr": hasattr_,
        "setattr": setattr_,
        "delattr": delattr_,
        PRIVATE_GETTER: private_attribute,
    }


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
        out = super().__call__(rewrite_attribute_access(code_action))
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


__all__ = ["GuardedExecutor", "guarded_executor", "is_introspection", "made_here", "rewrite_attribute_access"]
