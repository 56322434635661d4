"""The rehearsal model: a deterministic stand-in for an LLM, clearly labelled.

It drives the real smolagents loop through the tool calls a step declares
(``plan: [{tool, args}, ...]``), one call per agent step, then gives the final
answer ``Rehearsed: <task>``. It reads its position from the agent's memory,
so a run resumed from saved memory (after a person answered, in another
process) carries on with the next planned call. Its model name is
``rehearsal (no LLM)`` everywhere it is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smolagents import ChatMessage, MessageRole, Model
from smolagents.memory import ActionStep, MemoryStep
from smolagents.models import ChatMessageToolCall, ChatMessageToolCallFunction
from smolagents.monitoring import TokenUsage

from core.agents.llm import REHEARSAL_LABEL

MARK = "[rehearsal, no LLM]"


class RehearsalFailed(Exception):
    """A planned call failed; a rehearsal does not improvise, so the step fails."""


class RehearsalModel(Model):
    def __init__(self, plan: list[dict[str, Any]], answer: str, *, code: bool = False) -> None:
        super().__init__(model_id=REHEARSAL_LABEL)
        self.plan = plan
        self.answer = answer
        self.code = code
        self.memory_steps: Callable[[], list[MemoryStep]] = list

    def generate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, str] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        steps = [s for s in self.memory_steps() if isinstance(s, ActionStep)]
        if steps and steps[-1].error is not None:
            raise RehearsalFailed(f"planned call {len(steps)} failed: {steps[-1].error}")
        index = len(steps)
        if index < len(self.plan):
            call = self.plan[index]
            tool, args = call["tool"], dict(call.get("args", {}))
            text = f"{MARK} step {index + 1} of the plan: calling {tool}"
        else:
            tool, args = "final_answer", {"answer": self.answer}
            text = f"{MARK} the plan is done"
        usage = TokenUsage(input_tokens=0, output_tokens=0)
        if self.code:
            kwargs_src = ", ".join(f"{k}={v!r}" for k, v in args.items())
            body = (
                f"final_answer({self.answer!r})"
                if tool == "final_answer"
                else f"result = {tool}({kwargs_src})\nprint(result)"
            )
            return ChatMessage(
                role=MessageRole.ASSISTANT,
                content=f"Thought: {text}\n<code>\n{body}\n</code>",
                token_usage=usage,
            )
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content=text,
            token_usage=usage,
            tool_calls=[
                ChatMessageToolCall(
                    function=ChatMessageToolCallFunction(name=tool, arguments=args),
                    id=f"rehearsal_{index}",
                    type="function",
                )
            ],
        )
