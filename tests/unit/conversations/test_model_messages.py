"""What the model is given is built from the model history only: supervisor
messages and rows hidden from the model are dropped even if a caller passes
them; the rehearsal chat model is labelled and counts what it was given."""

from __future__ import annotations

from core.conversations.agent import DEFAULT_INSTRUCTIONS, Flow, model_messages
from core.conversations.messages import message_role, message_text
from core.conversations.rehearsal import REHEARSAL_MARK, RehearsalChatModel
from core.store.tables import ChatMessage


def _row(role: str, text: str, visible: bool = True) -> ChatMessage:
    return ChatMessage(session_id="s", role=role, author="x", content=text, visible_to_model=visible)


HISTORY = [
    _row("user", "hi"),
    _row("assistant", "hello"),
    _row("supervisor", "SECRET", False),
    _row("supervisor", "SECRET-2", True),
    _row("user", "hidden", False),
    _row("user", "bye"),
]


def test_only_visible_user_and_assistant_rows_reach_the_model() -> None:
    flow = Flow(tenant=None, name="f", parameters={"instructions": "Be brief."})
    given = [(message_role(m), message_text(m)) for m in model_messages(flow, HISTORY)]
    assert given == [("system", "Be brief."), ("user", "hi"), ("assistant", "hello"), ("user", "bye")]


def test_default_instructions_and_the_labelled_rehearsal() -> None:
    messages = model_messages(Flow(tenant=None, name="assistant"), HISTORY)
    assert message_text(messages[0]) == DEFAULT_INSTRUCTIONS
    reply = RehearsalChatModel().generate(messages)
    text = message_text(reply)
    assert text.startswith(REHEARSAL_MARK)
    assert "You said: 'bye'" in text and "given 3 message(s)" in text
    assert "SECRET" not in text
    quoting = [{"role": "user", "content": [{"type": "text", "text": 'It\'s "late"'}]}]
    said = message_text(RehearsalChatModel().generate(quoting))
    assert "You said: 'It's \"late\"'." in said  # as written, no repr escapes
