"""Sessions page in AppTest: a person chats with the built-in flow (the
labelled rehearsal model, no LLM), an admin in another app session takes
over, injects, switches to the model history and releases."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core.conversations import sessions as conv
from core.demo.scenarios import DEMO_PASSWORD
from core.identity.users import add_user
from core.store.db import Database
from tests.e2e.server import free_port
from tests.integration.dashboard.conftest import all_text, new_app, no_exception, open_page, sign_in

USER, ADMIN, OTHER = "pat@example.com", "sup@example.com", "other@example.com"


@pytest.fixture
def accounts(app_env: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    for name in ("COUNTERSIGN_MODEL_PROVIDER", "COUNTERSIGN_MODEL_ID"):
        monkeypatch.delenv(name, raising=False)
    db = Database(app_env)
    add_user(db, USER, role="viewer", password=DEMO_PASSWORD)
    add_user(db, OTHER, role="approver", password=DEMO_PASSWORD)
    add_user(db, ADMIN, role="admin", password=DEMO_PASSWORD)
    yield db
    db.dispose()


def chat(at: AppTest) -> list[tuple[str, str]]:
    """(name, text) of every chat message on the page."""
    out = []
    for message in at.get("chat_message"):
        # Messages are plain text (st.text), never Markdown.
        text = " ".join(str(m.value) for m in message.text)
        out.append((message.name, text))
    return out


def signed_in_on_sessions(email: str) -> AppTest:
    at = sign_in(new_app(), email)
    no_exception(at)
    return open_page(at, "sessions")


def test_chat_take_over_inject_release_across_two_app_sessions(accounts: Any) -> None:
    db = accounts
    user = signed_in_on_sessions(USER)
    assert "No sessions yet" in all_text(user)
    user.text_input(key="sessions.new.title").input("Order help")
    user.button(key="sessions.new.start").click().run()
    no_exception(user)
    user.chat_input(key="sessions.input").set_value("Two muffins please").run()
    no_exception(user)
    assert chat(user)[0] == ("user", "Two muffins please")
    assert chat(user)[1][0] == "assistant"
    assert "[rehearsal, no LLM] You said: 'Two muffins please'" in chat(user)[1][1]
    # A plain user has no supervisor controls.
    assert not [b for b in user.button if b.key == "sessions.take_over"]

    admin = signed_in_on_sessions(ADMIN)
    no_exception(admin)
    choice = admin.selectbox(key="sessions.choice")
    assert choice.format_func(choice.value) == f"Order help · {USER} · {choice.value[:8]}"
    assert [b for b in admin.button if b.key == "sessions.take_over"]
    assert not [c for c in admin.get("chat_input")]  # only the person who started it writes
    admin.button(key="sessions.take_over").click().run()
    no_exception(admin)
    assert "You took the conversation over." in all_text(admin)

    user.chat_input(key="sessions.input").set_value("Hello?").run()
    no_exception(user)
    assert [name for name, _ in chat(user)] == ["user", "assistant", "user"]  # no agent answer
    assert "A person from the team is handling this conversation." in all_text(user)

    admin.run()
    admin.text_area(key="sessions.inject_text").input("We are out of muffins; scones?")
    admin.button(key="sessions.inject").click().run()
    no_exception(admin)
    assert ("supervisor", "We are out of muffins; scones?") in chat(admin)
    admin.toggle(key="sessions.full_history").set_value(False).run()
    assert "supervisor" not in [name for name, _ in chat(admin)]
    admin.toggle(key="sessions.full_history").set_value(True).run()

    user.run()
    assert ("supervisor", "We are out of muffins; scones?") in chat(user)
    assert "not seen by the agent" in " ".join(str(c.value) for c in user.caption)

    admin.button(key="sessions.release").click().run()
    no_exception(admin)
    user.chat_input(key="sessions.input").set_value("Scones then").run()
    no_exception(user)
    last = chat(user)[-1]
    assert last[0] == "assistant" and "You said: 'Scones then'" in last[1]
    # The model was given the three user messages and the first answer, not the injection.
    assert "given 4 message(s)" in last[1]

    sessions = conv.list_sessions(db, ADMIN)
    assert [e.event_type for e in conv.session_events(db, sessions[0].id, ADMIN)] == [
        "session.started",
        "session.taken_over",
        "session.message_injected",
        "session.released",
    ]


def test_another_person_does_not_see_the_session(accounts: Any) -> None:
    db = accounts
    conv.start_session(db, USER, "assistant", title="Private")
    other = signed_in_on_sessions(OTHER)
    no_exception(other)
    assert "No sessions yet" in all_text(other)
    admin = signed_in_on_sessions(ADMIN)
    choice = admin.selectbox(key="sessions.choice")
    assert choice.format_func(choice.value) == f"Private · {USER} · {choice.value[:8]}"


def test_a_model_that_does_not_answer_is_a_plain_sentence_and_the_message_is_kept(
    accounts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = accounts
    # An OpenAI-compatible server that is not there: a loopback port nobody listens on.
    monkeypatch.setenv("COUNTERSIGN_MODEL_PROVIDER", "openai")
    monkeypatch.setenv("COUNTERSIGN_MODEL_ID", "llama3.1")
    monkeypatch.setenv("COUNTERSIGN_MODEL_API_BASE", f"http://127.0.0.1:{free_port()}/v1")
    started = conv.start_session(db, USER, "assistant", title="Down")
    user = signed_in_on_sessions(USER)
    user.chat_input(key="sessions.input").set_value("Are you there?").run()
    no_exception(user)
    assert any(
        "The agent could not answer" in str(e.value) and "your message is saved" in str(e.value)
        for e in user.error
    )
    assert chat(user) == [("user", "Are you there?")]
    assert [m.role for m in conv.full_history(db, started.id, USER)] == ["user"]
