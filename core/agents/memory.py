"""An agent's memory as JSON, and back, so a run can wait in the database.

Only what the agent loop reads back is kept: the task, each step's model
output, tool calls, observations, errors, timing and token usage (the model
input messages are rebuilt from these on every step anyway).
"""

from __future__ import annotations

import json
from typing import Any

from smolagents import ChatMessage, MessageRole
from smolagents import utils as smolagent_utils
from smolagents.memory import ActionStep, MemoryStep, PlanningStep, TaskStep, ToolCall
from smolagents.monitoring import AgentLogger, LogLevel, Timing, TokenUsage

_QUIET = AgentLogger(level=LogLevel.OFF)


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def _usage(usage: TokenUsage | None) -> dict[str, int] | None:
    return {"input": usage.input_tokens, "output": usage.output_tokens} if usage else None


def _timing(timing: Timing) -> dict[str, float | None]:
    return {"start": timing.start_time, "end": timing.end_time}


def step_to_dict(step: MemoryStep) -> dict[str, Any]:
    if isinstance(step, TaskStep):
        return {"kind": "task", "task": step.task}
    if isinstance(step, PlanningStep):
        return {
            "kind": "planning",
            "plan": step.plan,
            "timing": _timing(step.timing),
            "token_usage": _usage(step.token_usage),
        }
    if isinstance(step, ActionStep):
        return {
            "kind": "action",
            "step_number": step.step_number,
            "timing": _timing(step.timing),
            "model_output": _plain(step.model_output),
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": _plain(c.arguments)} for c in step.tool_calls or []
            ]
            if step.tool_calls is not None
            else None,
            "error": step.error.dict() if step.error is not None else None,
            "code_action": step.code_action,
            "observations": step.observations,
            "action_output": _plain(step.action_output),
            "token_usage": _usage(step.token_usage),
            "is_final_answer": step.is_final_answer,
        }
    raise TypeError(f"cannot save a {type(step).__name__} step")


def _usage_of(data: dict[str, int] | None) -> TokenUsage | None:
    return TokenUsage(input_tokens=data["input"], output_tokens=data["output"]) if data else None


def _error_of(data: dict[str, str] | None) -> smolagent_utils.AgentError | None:
    if not data:
        return None
    cls = getattr(smolagent_utils, data.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, smolagent_utils.AgentError)):
        cls = smolagent_utils.AgentError
    return cls(data.get("message", ""), _QUIET)


def step_from_dict(data: dict[str, Any]) -> MemoryStep:
    kind = data["kind"]
    if kind == "task":
        return TaskStep(task=data["task"])
    timing = Timing(start_time=data["timing"]["start"], end_time=data["timing"]["end"])
    if kind == "planning":
        return PlanningStep(
            model_input_messages=[],
            model_output_message=ChatMessage(role=MessageRole.ASSISTANT, content=data["plan"]),
            plan=data["plan"],
            timing=timing,
            token_usage=_usage_of(data.get("token_usage")),
        )
    calls = data.get("tool_calls")
    return ActionStep(
        step_number=data["step_number"],
        timing=timing,
        tool_calls=[ToolCall(name=c["name"], arguments=c["arguments"], id=c["id"]) for c in calls]
        if calls is not None
        else None,
        error=_error_of(data.get("error")),
        model_output=data.get("model_output"),
        code_action=data.get("code_action"),
        observations=data.get("observations"),
        action_output=data.get("action_output"),
        token_usage=_usage_of(data.get("token_usage")),
        is_final_answer=bool(data.get("is_final_answer")),
    )


def dump_memory(steps: list[MemoryStep]) -> dict[str, Any]:
    return {"version": 1, "steps": [step_to_dict(s) for s in steps]}


def load_memory(data: dict[str, Any]) -> list[MemoryStep]:
    return [step_from_dict(s) for s in data.get("steps", [])]
