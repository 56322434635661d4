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
from core.base.states import APPROVING_OUTCOMES
from core.definitions.approval import ApprovalConfig
from core.definitions.calls import make_call, smolagents_input_schema
from core.definitions.workflow import parse_approval_config

if TYPE_CHECKING:
    from core.definitions.agents import AgentSpec
    from core.engine.executor import TaskRequest

# Approval settings a held call takes from the step's agent.approval.
_ROUTING_KEYS = (
    "requested_from",
    "required_approvers",
    "approval_threshold",
    "reject_decides",
    "allow_self_approval",
    "timeout",
    "on_timeout",
    "escalate_to",
    "channels",
    "channel_configs",
)


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
    """The approval config, title and proposed action for a paused call."""
    name = pending.get("tool", "")
    args = dict(pending.get("arguments") or {})
    routing = {k: v for k, v in spec.approval.items() if k in _ROUTING_KEYS}
    step_config = request.step.approval_config
    if "requested_from" not in routing and step_config is not None:
        routing["requested_from"] = step_config.approvers
    action: dict[str, Any] = {"step": request.step.name, "type": "agent_call", "tool": name, "args": args}
    if pending.get("kind") == "request":
        raw = {
            **routing,
            "title": args.get("title") or "Approval requested by an agent",
            "description": args.get("description") or "",
            "type": args.get("approval_type") or "binary",
            "context_data": dict(args.get("context") or {}),
        }
        if requested_approver(args):
            raw["requested_from"] = requested_approver(args)
        config = parse_approval_config(raw)
        return config, str(raw["title"]), action
    title = spec.approval.get("title") or f"Allow the agent to call {name}?"
    raw = {
        **routing,
        "title": title,
        "type": "binary",
        "allow_modify": True,
        "description": spec.approval.get("description")
        or f"The agent of step {request.step.name!r} wants to call {name} with "
        f"{json.dumps(args, default=str)}. Approve, reject, or approve with changed "
        "arguments.",
        "context_data": {"tool": name, "arguments": args},
    }
    return parse_approval_config(raw), title, action


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
