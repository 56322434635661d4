"""The rehearsal chat model: a deterministic, labelled stand-in used by
conversations when no model is configured. It never calls an LLM: it repeats
the last user message and says how many conversation messages it was given
(so a person can see that a supervisor's messages are not among them)."""

from __future__ import annotations

from typing import Any

from smolagents import ChatMessage, MessageRole, Model

from core.agents.llm import REHEARSAL_LABEL
from core.conversations.messages import message_role, message_text

REHEARSAL_MARK = "[rehearsal, no LLM]"


class RehearsalChatModel(Model):
    def __init__(self) -> None:
        super().__init__(model_id=REHEARSAL_LABEL)

    def generate(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, str] | None = None,
        tools_to_call_from: list[Any] | None = None,
        **kwargs: Any,
    ) -> ChatMessage:
        conversation = [m for m in messages if message_role(m) != "system"]
        last_user = next((message_text(m) for m in reversed(conversation) if message_role(m) == "user"), "")
        text = (
            f"{REHEARSAL_MARK} You said: '{last_user}'. "  # as written: no repr escapes
            f"I was given {len(conversation)} message(s) of this conversation."
        )
        return ChatMessage(role=MessageRole.ASSISTANT, content=text)
