"""The held-call policy: what a person is asked, and what their answer means.

- ``request_approval``, ``rollback`` and every tool in the step's
  ``held_tools`` wait for a person before they run.
- In a tool-calling agent such a call must be the only call of its step: a
  batch that mixes it with other calls is refused whole (nothing runs) and
  the model is told to call it alone, so no neighbour's result is lost.
- A rejected (or expired, cancelled) call never runs.
- An approver may change the arguments (``{"arguments": {...}}``); the
  request guards the held call (``core.definitions.calls``), so the edit is checked
  against the tool's input schema when it is given (another tool, unknown
  arguments refused), and the call that runs is the one the decision
  released, its digest checked before it runs.
- The step's ``agent.approval`` is the request's config, key by key as a workflow's
  ``approval_config`` (``core.definitions.agents.request_settings`` says which request
  takes which key; the agent's settings were refused at load for any key that would not
  take effect). With ``type: budget`` a held tool's call is a budget request: its
  ``amount_argument`` routes it to the ``levels``, and the call released is the one
  with the amount the approvers allowed. A call that cannot be asked about as
  configured (no such amount argument, not a number) is refused before anyone is
  asked: nothing runs and the step fails (``CallNotReleased``).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import jinja2
import yaml
from smolagents import ToolCallingAgent
from smolagents.memory import ActionStep, ToolCall
from smolagents.models import ChatMessage
from smolagents.utils import AgentToolCallError

from core.agents.tools import GuardedTool, RunContext, needs_person, requested_approver, tool_inputs
from core.approvals.deciding import amount_of
from core.base.errors import CallNotReleased, DefinitionError
from core.base.states import APPROVING_OUTCOMES
from core.definitions.agents import BUILTIN_TOOLS, approval_settings, request_settings
from core.definitions.approval import ApprovalConfig
from core.definitions.calls import make_call, smolagents_input_schema
from core.definitions.workflow import parse_approval_config
from core.engine.tools import render_args

if TYPE_CHECKING:
    from core.definitions.agents import AgentSpec
    from core.engine.executor import TaskRequest


@functools.cache
def _prompt_templates() -> Any:
    """smolagents' tool-calling prompts, parsed once per process (not per step)."""
    text = importlib.resources.files("smolagents.prompts").joinpath("toolcalling_agent.yaml")
    return yaml.safe_load(text.read_text())


@functools.cache
def _compiled(template: str) -> jinja2.Template:
    return jinja2.Template(template, undefined=jinja2.StrictUndefined)


class CountersignToolCallingAgent(ToolCallingAgent):
    """A ToolCallingAgent that refuses batches mixing a held call with others.

    Its prompts are parsed and compiled once per process: a task step builds a
    new agent every time, and recompiling the system prompt's template cost
    more than the rest of a rehearsal step.
    """

    def __init__(self, *args: Any, context: RunContext | None = None, **kwargs: Any) -> None:
        # ``context`` is accepted for callers that pass it; whether a call waits for a
        # person is fixed in each tool's binding when the tools are built.
        kwargs.setdefault("prompt_templates", _prompt_templates())
        super().__init__(*args, **kwargs)

    def initialize_system_prompt(self) -> str:
        # As ToolCallingAgent.initialize_system_prompt, with a cached template.
        return _compiled(self.prompt_templates["system_prompt"]).render(
            tools=self.tools, managed_agents=self.managed_agents, custom_instructions=self.instructions
        )

    def _needs_person(self, name: str) -> bool:
        return needs_person(self.tools.get(name))

    def process_tool_calls(self, chat_message: ChatMessage, memory_step: ActionStep) -> Generator[Any]:
        calls = chat_message.tool_calls or []
        held = [c.function.name for c in calls if self._needs_person(c.function.name)]
        if held:
            memory_step.tool_calls = [
                ToolCall(name=c.function.name, arguments=c.function.arguments, id=c.id) for c in calls
            ]
            if len(calls) > 1:
                raise AgentToolCallError(
                    f"{', '.join(dict.fromkeys(held))} waits for a person and must be called alone "
                    f"in its own step. None of these {len(calls)} calls ran; call them one at a "
                    "time.",
                    self.logger,
                )
        yield from super().process_tool_calls(chat_message, memory_step)


def held_call(
    request: TaskRequest, pending: dict[str, Any], tool: GuardedTool | None
) -> dict[str, Any] | None:
    """The held call as a request guards it: tool, arguments, digest and input schema
    (a registered tool's from its signature, a built-in's from its smolagents inputs)."""
    if pending.get("kind") == "request":
        return None  # a question to a person, not a call that runs
    name = str(pending.get("tool", ""))
    schema: dict[str, Any] | None
    if name in request.registry:
        schema = request.registry.get(name).input_schema
    else:
        schema = smolagents_input_schema(tool_inputs(tool)) if tool is not None else None
    return make_call(name, dict(pending.get("arguments") or {}), schema)


def approval_request(
    request: TaskRequest, spec: AgentSpec, pending: dict[str, Any], tool: GuardedTool | None
) -> tuple[ApprovalConfig, str, dict[str, Any]]:
    """The approval config, title and proposed action for a paused call.

    Every key of the step's ``agent.approval`` that the request takes is in its config,
    as a workflow's approval step has it (``request_settings``): nothing given is left
    out. Raises ``CallNotReleased`` (nothing runs, the step fails) for a held call that
    cannot be asked about as configured.
    """
    name = str(pending.get("tool", ""))
    args = dict(pending.get("arguments") or {})
    given = approval_settings(spec.approval)
    step_config = request.step.approval_config
    action: dict[str, Any] = {"step": request.step.name, "type": "agent_call", "tool": name, "args": args}
    if pending.get("kind") == "request":
        raw = {
            **_asked(request_settings(given, "question"), step_config),
            "title": args.get("title") or "Approval requested by an agent",
            "description": args.get("description") or "",
            "type": args.get("approval_type") or "binary",
            "context_data": dict(args.get("context") or {}),
        }
        if requested_approver(args):
            raw["requested_from"] = requested_approver(args)
        config = parse_approval_config(raw)
        return config, str(raw["title"]), action
    # A held tool's call takes a budget (rollback, built in, has no amount).
    budget = given.get("type") == "budget" and name in spec.held_tools and name not in BUILTIN_TOOLS
    settings = request_settings(given, "held_tool" if budget else "builtin")
    title = str(settings.get("title") or f"Allow the agent to call {name}?")
    raw = {
        **_asked(settings, step_config),
        "title": title,
        "type": "budget" if budget else "binary",
        # allow_modify: false holds the call as the agent made it (core.approvals.voting).
        "allow_modify": settings.get("allow_modify", True),
        "description": settings.get("description")
        or f"The agent of step {request.step.name!r} wants to call {name} with "
        f"{json.dumps(args, default=str)}. "
        + (
            "Approve, reject, or approve with changed arguments."
            if settings.get("allow_modify", True)
            else "Approve or reject it (its arguments cannot be changed)."
        ),
        "context_data": {**(settings.get("context_data") or {}), "tool": name, "arguments": args},
    }
    if settings.get("show"):
        # What the definition asks approvers to see, rendered now (approval_config.show).
        action["show"] = [
            {"path": path, "value": _value_at(request.scope, path)} for path in settings["show"]
        ]
    config = parse_approval_config(raw)
    if budget:
        _check_amount(config, held_call(request, pending, tool))
    return config, title, action


def _asked(settings: dict[str, Any], step_config: ApprovalConfig | None) -> dict[str, Any]:
    """``settings``, asking the step's own approvers when they give no ``requested_from``."""
    if "requested_from" not in settings and step_config is not None:
        return {**settings, "requested_from": step_config.approvers}
    return settings


def _value_at(scope: dict[str, Any], path: str) -> Any:
    try:
        return render_args("${" + path + "}", scope)
    except KeyError:
        return None


def _check_amount(config: ApprovalConfig, call: dict[str, Any] | None) -> None:
    """A budget's held call must carry its amount: the tool takes ``amount_argument`` and
    the call gives it as a number (as a workflow's budget of a call reads it,
    ``core.approvals.deciding.amount_of``); else nobody is asked and nothing runs."""
    if call is None:
        return
    argument = config.amount_argument
    properties = (call.get("input_schema") or {}).get("properties")
    if isinstance(properties, dict) and argument not in properties:
        raise CallNotReleased(
            f"The call to {call['tool']!r} is refused: agent.approval.amount_argument names "
            f"{argument!r}, which {call['tool']} does not take, so a budget cannot be asked "
            "about it; nothing ran."
        )
    try:
        amount_of(config, {}, call)
    except DefinitionError as exc:
        problems = "; ".join(exc.problems)
        raise CallNotReleased(
            f"The call to {call['tool']!r} is refused: its amount (agent.approval.amount_argument "
            f"{argument!r}) cannot be asked about: {problems}; nothing ran."
        ) from None


def decision_observation(
    pending: dict[str, Any],
    decision: dict[str, Any],
    *,
    arguments: dict[str, Any] | None = None,
    result: Any = None,
) -> str:
    """What the model reads as the held call's result."""
    status = decision.get("status", "")
    approved = status in APPROVING_OUTCOMES
    facts: dict[str, Any] = {
        "decision": status,
        "approved": approved,
        "decided_by": decision.get("decided_by"),
        "comment": decision.get("comment") or "",
    }
    if pending.get("kind") == "request":
        facts["data"] = decision.get("data") or {}
        return json.dumps(facts, default=str)
    facts["tool"] = pending.get("tool")
    if not approved:
        facts["ran"] = False
        facts["note"] = "The call was not approved and did not run. Do not call it again."
        return json.dumps(facts, default=str)
    facts["ran"] = True
    if arguments is not None and arguments != pending.get("arguments"):
        facts["arguments_changed_by_approver"] = arguments
    facts["result"] = result
    return json.dumps(facts, default=str)
