"""A scripted smolagents ``Model`` for tests: real agent loop, no LLM.

The script lives in the workflow definition (``agent.model.options.script``),
so a runner in another process replays the same script. The model reads its
position from the conversation (one assistant message per agent step), so a
run resumed from saved memory carries on where it stopped. Every prompt it
is shown is appended to ``SEEN`` (and to the file named by
``SCRIPTED_SEEN_FILE``) so tests can check what the agent was told.
"""

from __future__ import annotations

import json
import os
from typing import Any

from smolagents import ChatMessage, MessageRole, Model
from smolagents.models import ChatMessageToolCall, ChatMessageToolCallFunction
from smolagents.monitoring import TokenUsage

SEEN: list[str] = []


def _text(message: Any) -> str:
    content = message.content if isinstance(message, ChatMessage) else message.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _role(message: Any) -> str:
    role = message.role if isinstance(message, ChatMessage) else message.get("role")
    return str(getattr(role, "value", role))


class ScriptedModel(Model):
    def __init__(self, script: list[dict[str, Any]], code: bool = False) -> None:
        super().__init__(model_id="scripted-test-model")
        self.script = script
        self.code = code

    def generate(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: Any = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        index = sum(_role(m) == "assistant" for m in messages)
        last = _text(messages[-1]) if messages else ""
        SEEN.append(last)
        if os.environ.get("SCRIPTED_SEEN_FILE"):
            with open(os.environ["SCRIPTED_SEEN_FILE"], "a", encoding="utf-8") as out:
                out.write(json.dumps({"index": index, "last": last}) + "\n")
        entry = self.script[min(index, len(self.script) - 1)]
        usage = TokenUsage(input_tokens=10 * (index + 1), output_tokens=5)
        text = f"scripted step {index + 1}"
        if "code" in entry:
            return ChatMessage(
                role=MessageRole.ASSISTANT,
                content=f"Thought: {text}\n<code>\n{entry['code']}\n</code>",
                token_usage=usage,
            )
        if "final" in entry:
            calls = [("final_answer", {"answer": entry["final"]})]
        elif "calls" in entry:
            calls = [(c["tool"], c.get("args", {})) for c in entry["calls"]]
        else:
            calls = [(entry["call"], entry.get("args", {}))]
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content=text,
            token_usage=usage,
            tool_calls=[
                ChatMessageToolCall(
                    function=ChatMessageToolCallFunction(name=name, arguments=args),
                    id=f"call_{index}_{n}",
                    type="function",
                )
                for n, (name, args) in enumerate(calls)
            ],
        )


def scripted(script: list[dict[str, Any]], **agent: Any) -> dict[str, Any]:
    """An ``agent:`` mapping for a step driven by ``script``."""
    return {
        "model": {
            "provider": "python",
            "model_id": "tests.integration.agents.scripted:ScriptedModel",
            "options": {"script": script, "code": agent.get("type") == "code"},
        },
        **agent,
    }
