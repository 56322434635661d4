"""A scripted model whose script may fail once: ``{"raise": "why", "then": {...}}``
raises ``RuntimeError(why)`` the first time it is reached in this process and
plays ``then`` afterwards (messages are unique per test, so tests do not share)."""

from __future__ import annotations

from typing import Any

from smolagents import ChatMessage

from tests.integration.agents.scripted import ScriptedModel, _role

RAISED: set[str] = set()


class FlakyModel(ScriptedModel):
    def generate(
        self,
        messages: list[Any],
        stop_sequences: list[str] | None = None,
        response_format: Any = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        index = sum(_role(m) == "assistant" for m in messages)
        entry = self.script[min(index, len(self.script) - 1)]
        if "raise" in entry:
            if entry["raise"] not in RAISED:
                RAISED.add(entry["raise"])
                raise RuntimeError(entry["raise"])
            script = list(self.script)
            script[index] = entry["then"]
            return ScriptedModel(script, self.code).generate(
                messages, stop_sequences, response_format, tools_to_call_from
            )
        return super().generate(messages, stop_sequences, response_format, tools_to_call_from, **kwargs)


def flaky(script: list[dict[str, Any]], **agent: Any) -> dict[str, Any]:
    return {
        "model": {
            "provider": "python",
            "model_id": "tests.integration.execution_logs.flaky:FlakyModel",
            "options": {"script": script},
        },
        **agent,
    }
