"""Workflow definitions: the seed's JSON/YAML format, validated with pydantic.

A definition is refused whole, with every problem listed by its path, e.g.
``steps[1].approval_config.type: must be one of binary, form, budget``.
The seed's shorthand of an approval step that puts ``title``,
``approval_type`` and ``requested_from`` at the step's top level is folded
into ``approval_config`` before validation.

A step's retry policy is ``core.definitions.retry_policy``; reading a definition
from text or a file is ``core.definitions.definition_text``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    model_validator,
)

from core.base.errors import DefinitionError
from core.base.storable import too_deep, unstorable
from core.definitions.approval import ApprovalConfig, _Strict
from core.definitions.calls import injected_argument_problems
from core.definitions.limits import MAX_DEFINITION_BYTES, MAX_STEPS_ENV, Duration, max_steps
from core.definitions.retry_policy import RetryPolicy
from core.definitions.timers import veto_refusals

__all__ = [
    "ApprovalGate",
    "CompensateSpec",
    "OnReject",
    "RetryPolicy",
    "Step",
    "StepType",
    "WorkflowDefinition",
    "definition_dict",
    "error_path",
    "parse_approval_config",
    "parse_definition",
    "named_people",
    "named_principals",
    "unanswerable_approvals",
    "unplain_principals",
    "unregistered_tools",
]


class ApprovalGate(_Strict):
    """``requires_approval: {when: "args.amount > 1000"}``: ask only when it is true."""

    when: str = Field(min_length=1)


def _parse_gate(value: Any) -> Any:
    """``true``/``false``, or ``{when: "<expression>"}`` checked here (one clear message)."""
    if not isinstance(value, dict):
        return value
    unknown = sorted(set(value) - {"when"})
    if unknown:
        raise ValueError(f"{unknown[0]}|unknown field (a gate is {{when: <expression>}})")
    when = value.get("when")
    if not isinstance(when, str) or not when.strip():
        raise ValueError('when|required: an expression such as "args.amount > 1000"')
    from core.definitions.gates import check_expression

    if problem := check_expression(when):
        raise ValueError(f"when|{problem}")
    return ApprovalGate(when=when)


class OnReject(_Strict):
    action: Literal["fail", "skip", "goto"] = "fail"
    target: str | None = None


def _parse_on_reject(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith("goto:"):
            return {"action": "goto", "target": value[5:].strip()}
        if value not in ("fail", "skip"):
            raise ValueError("must be one of fail, skip, goto:<step name>")
        return {"action": value}
    if isinstance(value, dict) and set(value) == {"goto"}:
        return {"action": "goto", "target": value["goto"]}
    return value


class CompensateSpec(_Strict):
    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


def _parse_compensate(value: Any) -> Any:
    return {"tool": value} if isinstance(value, str) else value


StepType = Literal["task", "approval", "checkpoint", "tool"]


_APPROVAL_SHORTHAND = (
    "title",
    "approval_type",
    "requested_from",
    "required_approvers",
    "approval_threshold",
    "context_data",
    "form_fields",
    "timeout_approval",
    "show",
)


class Step(_Strict):
    name: str = Field(min_length=1, max_length=200)
    type: StepType = "task"
    task: str | None = None
    description: str = ""
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    create_checkpoint: bool = False
    # true, or a conditional gate {when: "<expression>"} (core.definitions.gates).
    requires_approval: Annotated[bool | ApprovalGate, BeforeValidator(_parse_gate)] = False
    approval_config: ApprovalConfig | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    on_reject: Annotated[OnReject, BeforeValidator(_parse_on_reject)] = Field(default_factory=OnReject)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: Duration | None = None
    compensate: Annotated[CompensateSpec | None, BeforeValidator(_parse_compensate)] = None
    # Agent settings for task steps (see core.agents); a profile name or inline.
    agent: str | dict[str, Any] | None = None
    plan: list[dict[str, Any]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _fold_approval_shorthand(cls, data: Any) -> Any:
        """The seed's deployment pipeline puts approval fields on the step itself."""
        if not isinstance(data, dict) or data.get("type") != "approval":
            return data
        data = dict(data)
        moved = {k: data.pop(k) for k in _APPROVAL_SHORTHAND if k in data}
        if moved:
            config = dict(data.get("approval_config") or {})
            for key, value in moved.items():
                config.setdefault(key, value)
            if "description" in data and "description" not in config:
                config["description"] = data["description"]
            data["approval_config"] = config
        return data

    @model_validator(mode="after")
    def _rules(self) -> Step:
        if self.type == "tool" and not self.tool:
            raise ValueError("tool|required for a tool step")
        if self.type != "tool" and self.tool:
            raise ValueError("tool|only tool steps name a tool; use type: tool")
        if self.type == "approval" and self.approval_config is None:
            raise ValueError("approval_config|required for an approval step")
        if self.requires_approval and self.approval_config is None:
            raise ValueError("approval_config|required when requires_approval is true")
        config = self.approval_config
        if (
            self.type == "tool"
            and self.requires_approval
            and config is not None
            and config.type == "budget"
            and config.amount_argument not in self.args
        ):
            raise ValueError(
                f"args.{config.amount_argument}|a budget approval of a call sets its "
                f"{config.amount_argument!r} argument to the approved amount, and this call has "
                "none; add it to args or name another in approval_config.amount_argument"
            )
        if self.agent is not None or self.plan is not None:
            from core.definitions.agents import check_agent_settings

            problem = check_agent_settings(self.agent, self.plan)
            if problem:
                raise ValueError(problem)
        return self

    @property
    def needs_approval(self) -> bool:
        """Whether the step may ask a person (a conditional gate decides at run time)."""
        return self.type == "approval" or bool(self.requires_approval)

    @property
    def approval_gate(self) -> str | None:
        """The gate's expression when approval is conditional, else None."""
        gate = self.requires_approval
        return gate.when if isinstance(gate, ApprovalGate) else None


class WorkflowDefinition(_Strict):
    name: str | None = None
    description: str = ""
    version: str | int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    # Retry policy for every step; a step's own ``retry`` fields win.
    retry: RetryPolicy | None = None

    @model_validator(mode="after")
    def _resolve_retry(self) -> WorkflowDefinition:
        # Resolved once here, so the stored definition carries each step's
        # whole policy and a stored definition reads back the same.
        if self.retry is not None:
            for step in self.steps:
                step.retry = step.retry.over(self.retry)
        return self

    def step_index(self, name: str) -> int:
        for index, step in enumerate(self.steps):
            if step.name == name:
                return index
        raise KeyError(name)


def _semantic_problems(data: Any) -> list[str]:
    """Cross-step rules, checked on the raw data so they are listed alongside
    structural problems."""
    problems: list[str] = []
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list):
        return problems
    seen: dict[str, int] = {}
    # Only text names count: a name given as a list or a mapping is unhashable
    # (pydantic reports it; this must not crash on it).
    names = {s.get("name") for s in steps if isinstance(s, dict) and isinstance(s.get("name"), str)}
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        name = step.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(
                    f"steps[{index}].name: duplicate step name {name!r} (also steps[{seen[name]}])"
                )
            seen.setdefault(name, index)
        on_reject = step.get("on_reject")
        target = None
        if isinstance(on_reject, str) and on_reject.startswith("goto:"):
            target = on_reject[5:].strip()
        elif isinstance(on_reject, dict):
            target = on_reject.get("goto", on_reject.get("target"))
        if isinstance(target, str) and target not in names:
            problems.append(f"steps[{index}].on_reject: no step named {target!r} to go to")
        problems.extend(injected_argument_problems(step.get("args"), f"steps[{index}].args"))
        compensate = step.get("compensate")
        if isinstance(compensate, dict):
            problems.extend(
                injected_argument_problems(compensate.get("args"), f"steps[{index}].compensate.args")
            )
        agent = step.get("agent")
        for where, config in (
            ("approval_config", step.get("approval_config")),
            ("agent.approval", agent.get("approval") if isinstance(agent, dict) else None),
        ):
            problems.extend(f"steps[{index}].{where}.{p}" for p in veto_refusals(config))
    return problems


def unanswerable_approvals(definition: WorkflowDefinition, requester: str) -> list[str]:
    """Approvals of ``definition`` that nobody but ``requester`` could answer, by path.

    Only named people count here: a group is resolved when the request is
    opened (and escalated to admins then if it holds nobody else).
    """
    who = requester.strip().lower()
    problems = []
    for index, step in enumerate(definition.steps):
        config = step.approval_config
        if config is None or not step.needs_approval or config.allow_self_approval:
            continue
        rounds = [lv.approvers for lv in config.levels] if config.levels else [config.approvers]
        for number, approvers in enumerate(rounds):
            named = [a.strip().lower() for a in approvers]
            if named and all("@" in a for a in named) and not set(named) - {who}:
                where = (
                    f"steps[{index}].approval_config.levels[{number}].approvers"
                    if config.levels
                    else f"steps[{index}].approval_config.requested_from"
                )
                problems.append(
                    f"{where}: the only approver is {who}, who starts this "
                    "workflow and cannot approve their own request; name another "
                    "approver or set allow_self_approval"
                )
    return problems


def named_people(definition: WorkflowDefinition) -> list[tuple[str, str]]:
    """Every person (an email) a definition names to decide, by path: each step's
    ``approval_config`` (approvers, levels, escalation chain, backup) and an inline
    agent's ``approval`` (who its held calls ask)."""
    return [(where, who) for where, who in named_principals(definition) if "@" in who]


def named_principals(definition: WorkflowDefinition) -> list[tuple[str, str]]:
    """``named_people`` and the groups named beside them, by path."""
    named = []
    for index, step in enumerate(definition.steps):
        if step.approval_config is not None:
            where = f"steps[{index}].approval_config"
            named += [(f"{where}.{path}", who) for path, who in step.approval_config.named_principals()]
        agent_approval = step.agent.get("approval") if isinstance(step.agent, dict) else None
        if isinstance(agent_approval, dict) and agent_approval:
            config = ApprovalConfig.model_validate(agent_approval)  # validated with the agent
            where = f"steps[{index}].agent.approval"
            named += [(f"{where}.{path}", who) for path, who in config.named_principals()]
    return named


def unplain_principals(named: list[tuple[str, str]], prefix: str = "") -> list[str]:
    """One problem per approver named that is no plain address or group name, by path
    (core.identity.addresses: the check every place an address enters goes through).
    Checked where a definition or config is given, so a stored one still loads."""
    from core.identity.addresses import principal_problem

    return [f"{prefix}{where}: {problem}" for where, who in named if (problem := principal_problem(who))]


def unregistered_tools(definition: WorkflowDefinition | Any, registered: Container[str]) -> list[str]:
    """Tools a definition names (``tool``, ``compensate``, a ``plan``'s calls, an inline
    agent's ``tools`` and ``held_tools``) that ``registered`` does not hold, by path.

    ``definition`` may be a parsed one or the raw data (a refused definition's tools
    are named with its other problems); what is not in a step's shape is passed over.
    """
    if isinstance(definition, WorkflowDefinition):
        definition = definition_dict(definition)
    steps = definition.get("steps") if isinstance(definition, dict) else None
    problems = []
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        compensate = step.get("compensate")  # a tool's name, or {tool, args}
        named: list[tuple[str, Any]] = [
            ("tool", step.get("tool")),
            ("compensate.tool", compensate.get("tool") if isinstance(compensate, dict) else compensate),
        ]
        plan = step.get("plan")
        for n, call in enumerate(plan if isinstance(plan, list) else []):
            named.append((f"plan[{n}].tool", call.get("tool") if isinstance(call, dict) else None))
        agent = step.get("agent")
        if isinstance(agent, dict):
            for key in ("tools", "held_tools"):
                items = agent.get(key)
                for n, item in enumerate(items if isinstance(items, list) else []):
                    name = item.get("name") if isinstance(item, dict) else item
                    named.append((f"agent.{key}[{n}]", name))
        for where, name in named:
            if isinstance(name, str) and name and name not in registered and name not in _BUILTIN_TOOLS:
                problems.append(
                    f"steps[{index}].{where}: no tool is registered as {name!r} in "
                    "this process (COUNTERSIGN_TOOL_MODULES)"
                )
    return problems


# Agent tools every agent has without registering them (core.agents.tools).
_BUILTIN_TOOLS = frozenset({"request_approval", "create_checkpoint", "rollback", "final_answer"})


def error_path(loc: tuple[Any, ...], empty: str = "(definition)") -> str:
    """Where a pydantic error is, as a reader writes it: ``steps[2].retry.backoff``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and (part.startswith("function-") or part in ("str", "dict")):
            continue  # pydantic's union/validator tags say nothing to a user
        else:
            path += ("." if path else "") + str(part)
    return path or empty


def _format_error(error: dict[str, Any]) -> str:
    loc = list(error["loc"])
    kind = error["type"]
    message: str = error["msg"]
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        options = [o.strip().strip("'\"") for o in re.split(r",| or ", expected) if o.strip()]
        message = "must be one of " + ", ".join(options)
    elif kind == "missing":
        message = "required"
    elif kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
        if "|" in message:
            field, message = message.split("|", 1)
            loc.append(field)
    else:
        message = message[:1].lower() + message[1:]
    return f"{error_path(tuple(loc))}: {message}"


def parse_definition(data: Any, *, tools: Container[str] | None = None) -> WorkflowDefinition:
    """Validate a definition already parsed from JSON/YAML; with ``tools`` (the names the
    runners know), a tool it names that is not among them is one more problem, listed
    with all the others."""
    if not isinstance(data, dict):
        raise DefinitionError(["(definition): must be a mapping with a steps list"])
    if deep := too_deep(data, "(definition)"):
        raise DefinitionError([deep])
    size = len(json.dumps(data, default=str))
    if size > MAX_DEFINITION_BYTES:
        raise DefinitionError(
            [f"(definition): {size:,} bytes, more than the {MAX_DEFINITION_BYTES:,} allowed"]
        )
    steps = data.get("steps")
    if isinstance(steps, list) and len(steps) > max_steps():
        raise DefinitionError(
            [f"steps: {len(steps):,} steps, more than the {max_steps():,} allowed ({MAX_STEPS_ENV})"]
        )
    problems: list[str] = []
    definition: WorkflowDefinition | None = None
    try:
        definition = WorkflowDefinition.model_validate(data)
    except ValidationError as exc:
        problems.extend(_format_error(dict(e)) for e in exc.errors())
    problems.extend(_semantic_problems(data))
    if definition is not None:
        problems.extend(unplain_principals(named_principals(definition)))
    if tools is not None:
        problems.extend(unregistered_tools(data, tools))
    problems.extend(unstorable(data))
    if problems or definition is None:
        raise DefinitionError(list(dict.fromkeys(problems)))
    return definition


def parse_approval_config(data: Any) -> ApprovalConfig:
    """Validate an approval config given on its own (API, agent tool)."""
    try:
        config = ApprovalConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_format_error(dict(e)) for e in exc.errors()]
        raise DefinitionError([f"approval_config.{p}" for p in problems]) from None
    if problems := [f"approval_config.{p}" for p in veto_refusals(data)] or unstorable(
        data, "approval_config"
    ):
        raise DefinitionError(problems)
    if problems := unplain_principals(config.named_principals(), "approval_config."):
        raise DefinitionError(problems)
    return config


def definition_dict(definition: WorkflowDefinition) -> dict[str, Any]:
    """The normalised definition as stored with a workflow."""
    return definition.model_dump(mode="json", by_alias=True, exclude_none=True)
