"""A smolagents ``Model`` for team tests: it answers ``<label>(<task>)``.

The task is the text the agent was given before the context sections the
enhancer adds (``\\n\\n## ...``), so a chain of echo members answers
``C(B(A(task)))`` only if each was handed the previous member's answer.
Every task seen is appended to ``TASKS`` as ``(label, task)``.
"""

from __future__ import annotations

from typing import Any

from smolagents import ChatMessage, MessageRole, Model
from smolagents.models import ChatMessageToolCall, ChatMessageToolCallFunction

from tests.integration.agents.scripted import _role, _text

TASKS: list[tuple[str, str]] = []
PREFIX = "New task:\n"


class EchoModel(Model):
    def __init__(self, label: str) -> None:
        super().__init__(model_id=f"echo-{label}")
        self.label = label

    def generate(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: Any = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        given = next(_text(m) for m in messages if _role(m) == "user" and PREFIX in _text(m))
        task = given.split(PREFIX, 1)[1].split("\n\n## ", 1)[0]
        TASKS.append((self.label, task))
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content="echo",
            tool_calls=[
                ChatMessageToolCall(
                    function=ChatMessageToolCallFunction(
                        name="final_answer", arguments={"answer": f"{self.label}({task})"}
                    ),
                    id="call_echo",
                    type="function",
                )
            ],
        )
