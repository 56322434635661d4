"""The held-call guard on the tool objects themselves, without a database (issue 18).

What the agent is handed leads to nothing that decides whether a call runs:
not through attributes, not by changing the tool or its classes, not by
re-creating or copying it. A released call runs once, exactly as released,
in the run it was released for. A code agent may not import our packages.
The end-to-end attempts through generated code are in
tests/reliability/test_security_held_calls.py.
"""

from __future__ import annotations

import copy
import pickle
from collections import deque
from types import (
    BuiltinFunctionType,
    MappingProxyType,
    MethodDescriptorType,
    MethodWrapperType,
    ModuleType,
    WrapperDescriptorType,
)
from typing import Any

import pytest
from smolagents import Tool
from smolagents.local_python_executor import safer_func

from core.agents import tools as guard
from core.agents.tools import (
    GuardedTool,
    HoldForApproval,
    RegistryTool,
    RunContext,
    ToolTampering,
    build_tools,
    run_released,
)
from core.base.errors import DefinitionError
from core.definitions.agents import AgentSpec
from core.definitions.calls import call_digest
from core.definitions.workflow import parse_definition
from core.engine.tools import ToolRegistry


class World:
    def __init__(self, held: set[str], run_id: str = "") -> None:
        self.done: list[dict[str, Any]] = []
        self.registry = ToolRegistry()

        @self.registry.register("charge")
        def charge(amount: float, idempotency_key: str) -> dict[str, Any]:
            """Charge."""
            self.done.append({"amount": amount})
            if amount < 0:
                raise ValueError("negative")
            return {"charged": amount}

        self.function = charge
        self.ctx = RunContext(None, self.registry, "wf", "step", "wf/1", held=held, run_id=run_id)
        self.tools = {t.name: t for t in build_tools(self.ctx, ["charge"])}
        self.charge = self.tools["charge"]


# -- nothing of the run is reachable ---------------------------------------------------------------

FOLLOWED = (
    "__wrapped__",
    "__closure__",
    "__self__",
    "__func__",
    "__dict__",
    "__class__",
    "__defaults__",
    "__kwdefaults__",
    "forward",
    "context",
    "released",
    "held",
    "registry",
    "cell_contents",
    "__call__",
    "run",
)


# Not walked: modules, and Python's own callables (a method-wrapper's __call__ is a new one).
OPAQUE = (ModuleType, BuiltinFunctionType, MethodWrapperType, WrapperDescriptorType, MethodDescriptorType)


def reachable(start: Any, limit: int = 50000) -> list[Any]:
    """Everything reached from ``start`` by attributes and container items, except a
    function's ``__globals__``, modules (which smolagents' interpreter refuses) and
    Python's built-in types and functions."""
    seen: dict[int, Any] = {}
    queue = deque([start])
    while queue:
        obj = queue.popleft()
        if (
            id(obj) in seen
            or isinstance(obj, OPAQUE)
            or (isinstance(obj, type) and obj.__module__ == "builtins")
        ):
            continue
        seen[id(obj)] = obj
        assert len(seen) < limit, "the walk did not end"
        if isinstance(obj, dict | MappingProxyType):
            queue.extend(obj.keys())
            queue.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            queue.extend(obj)
        if isinstance(obj, type):
            queue.extend(type.mro(obj))
        for name in FOLLOWED:
            try:
                queue.append(object.__getattribute__(obj, name))
            except Exception:  # noqa: BLE001, S112 - an attribute the object does not have
                continue
    return list(seen.values())


@pytest.mark.parametrize("handed", ["tool", "smolagents' wrapper"])
def test_nothing_the_agent_is_handed_leads_to_the_function_registry_or_run(handed: str) -> None:
    world = World({"charge"})
    start = world.charge if handed == "tool" else safer_func(world.charge)
    found = reachable(start)
    assert any(o is world.charge for o in found)  # the walk does go through the tool
    forbidden = {
        id(world.function): "the registered function",
        id(world.registry): "the registry",
        id(world.ctx): "the run's context",
        id(world.ctx.lock): "the run's lock",
    }
    hits = [forbidden[id(o)] for o in found if id(o) in forbidden]
    hits += [type(o).__name__ for o in found if type(o).__name__ in ("_Binding", "RunContext")]
    assert hits == []
    for name in ("context", "released", "held", "registry", "run"):
        assert not hasattr(world.charge, name)
        assert not hasattr(start, name)


# -- changing the tool or its classes ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["context", "released", "held", "forward", "name", "inputs", "always_held", "__class__", "__call__"],
)
def test_nothing_can_be_set_or_deleted_on_a_tool_and_the_run_stops(name: str) -> None:
    world = World({"charge"})
    with pytest.raises(ToolTampering, match=f"set '{name}' on the tool 'charge'"):
        setattr(world.charge, name, None)
    with pytest.raises(ToolTampering):  # latched: nothing of the run runs any more
        world.tools["create_checkpoint"](name="cp")
    with pytest.raises(ToolTampering, match="delete"):
        delattr(World(set()).charge, name)
    assert world.done == []


@pytest.mark.parametrize("cls", [GuardedTool, RegistryTool, *guard.BUILTIN_TOOL_CLASSES.values()])
def test_the_tool_classes_are_sealed(cls: type[GuardedTool]) -> None:
    for name in ("forward", "always_held", "__call__", "new_attribute"):
        with pytest.raises(ToolTampering, match=f"set '{name}' on the tool class"):
            setattr(cls, name, lambda *a, **k: "paid")
    with pytest.raises(ToolTampering, match="delete 'forward'"):
        delattr(cls, "forward")


def test_a_changed_smolagents_tool_class_does_not_reach_countersign_tools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("__call__", "forward", "__getattribute__", "__setattr__", "__reduce_ex__"):
        monkeypatch.setattr(Tool, name, lambda *a, **k: "paid")
    world = World({"charge"})
    with pytest.raises(HoldForApproval):
        world.charge(amount=5.0)
    assert world.done == []


def test_membership_is_fixed_when_the_tools_are_built() -> None:
    world = World({"charge"})
    world.ctx.held = frozenset()  # the context is the handler's; the tools do not read it
    with pytest.raises(HoldForApproval):
        world.charge(amount=5.0)
    unheld = World(set())
    unheld.ctx.held = frozenset({"charge"})
    assert unheld.charge(amount=1.0) == {"charged": 1.0}


# -- re-created, copied, subclassed --------------------------------------------------------------


def test_a_tool_cannot_be_re_created_copied_or_subclassed() -> None:
    world = World({"charge"})
    with pytest.raises(ToolTampering, match="create a RegistryTool"):
        type(world.charge)()
    with pytest.raises(ToolTampering, match="create a GuardedTool"):
        GuardedTool(world.ctx)
    for copier in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(ToolTampering, match="copy the tool 'charge'"):
            copier(world.charge)
    with pytest.raises(ToolTampering, match="subclass a tool class"):
        type("Mine", (RegistryTool,), {"forward": lambda self, **kw: "paid"})
    stray = object.__new__(RegistryTool)  # made around every constructor: it has no binding
    with pytest.raises(ToolTampering, match="not built for the run"):
        stray(amount=5.0)
    assert world.done == []


# -- releases ----------------------------------------------------------------------------------------


def test_a_released_call_runs_once_exactly_as_released() -> None:
    world = World({"charge"})
    assert run_released(world.charge, {"amount": 5.0}) == {"charged": 5.0}
    assert world.done == [{"amount": 5.0}]
    assert guard._RELEASED == {}
    with pytest.raises(HoldForApproval):  # the same call again: it was released once
        world.charge(amount=5.0)
    assert world.done == [{"amount": 5.0}]


def test_a_release_is_for_one_digest_one_tool_and_one_build() -> None:
    world = World({"charge"}, run_id="42")
    guard._RELEASED[world.ctx.key] = ("charge", call_digest("charge", {"amount": 5.0}))
    try:
        with pytest.raises(HoldForApproval):
            world.charge(amount=6.0)  # another call than the released one
    finally:
        guard._RELEASED.clear()
    other = World({"charge"}, run_id="42")  # the same step run, built again
    assert other.ctx.key != world.ctx.key and other.ctx.key.startswith("42#")
    guard._RELEASED[world.ctx.key] = ("charge", call_digest("charge", {"amount": 5.0}))
    try:
        with pytest.raises(HoldForApproval):
            other.charge(amount=5.0)
    finally:
        guard._RELEASED.clear()
    assert world.done == other.done == []


def test_a_release_never_outlives_its_call() -> None:
    world = World({"charge"})
    with pytest.raises(ValueError, match="negative"):
        run_released(world.charge, {"amount": -1.0})
    assert guard._RELEASED == {}


# -- imports ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "core",
        "core.agents.tools",
        "core.*",
        "gateway",
        "components.x",
        "pages",
        "app",
        "sys",
        "gc",
        "inspect",
        "os.path",
        "*",
        "*.x",
        "core..x",
    ],
)
def test_a_code_agent_may_not_import_our_packages_or_the_runners_process(name: str) -> None:
    with pytest.raises(ValueError):
        AgentSpec.model_validate({"type": "code", "authorized_imports": [name]})
    with pytest.raises(DefinitionError) as caught:
        parse_definition(
            {
                "steps": [
                    {
                        "name": "agent",
                        "type": "task",
                        "task": "t",
                        "agent": {"type": "code", "authorized_imports": [name]},
                    }
                ]
            }
        )
    assert caught.value.problems[0].startswith("steps[0].agent.authorized_imports: ")


def test_ordinary_modules_may_still_be_authorised() -> None:
    spec = AgentSpec.model_validate(
        {"type": "code", "authorized_imports": ["json", "numpy.*", "pandas", "copy"]}
    )
    assert spec.authorized_imports == ["json", "numpy.*", "pandas", "copy"]
