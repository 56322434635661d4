"""Supervised conversations in two real browsers at once: a person chats in
one browser context, a supervisor takes the session over in another while the
person keeps writing, injects a message the person sees, and releases it.

Both pages re-read the conversation every 2 s (a Streamlit fragment), so each
side sees the other's messages without reloading. The dashboard has no model
configured: the agent is the labelled rehearsal chat model, which says how
many messages it was given. Every wait is bounded (``expect`` polls).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from core.conversations import sessions as conv
from core.store.tables import ChatSession
from tests.e2e.server import Dashboard, fresh_page, sign_in, wait_for_app

pytestmark = pytest.mark.browser

USER, SUPERVISOR = "viewer@example.com", "admin@example.com"
NOTE = "We are out of muffins today; scones are on the house."


@pytest.fixture
def second_page(chromium: Any) -> Iterator[Any]:
    """A page in its own browser context: another person, another session."""
    with fresh_page(chromium) as page:
        yield page


def _write(page: Any, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")


def _message(page: Any, text: str) -> Any:
    return page.get_by_test_id("stChatMessage").filter(has_text=text)


def _session_id(app: Dashboard, title: str) -> str:
    db = app.database()
    try:
        with db.read() as session:
            return session.scalars(select(ChatSession.id).where(ChatSession.title == title)).one()
    finally:
        db.dispose()


def _roles(app: Dashboard, session_id: str) -> list[str]:
    db = app.database()
    try:
        return [m.role for m in conv.full_history(db, session_id, SUPERVISOR)]
    finally:
        db.dispose()


def test_supervisor_takes_over_a_live_session_while_the_user_writes(
    dashboard: Dashboard, page: Any, second_page: Any
) -> None:
    user, supervisor = page, second_page

    # The person starts a session and the agent answers.
    user.goto(f"{dashboard.url}/sessions")
    wait_for_app(user)
    sign_in(user, USER)
    expect(user.get_by_role("heading", name="Sessions")).to_be_visible()
    user.get_by_text("New session", exact=True).click()
    user.get_by_label("Title").fill("Breakfast order")
    user.get_by_role("button", name="Start session", exact=True).click()
    wait_for_app(user)
    _write(user, "Two muffins please")
    expect(_message(user, "You said: 'Two muffins please'")).to_be_visible()
    session_id = _session_id(dashboard, "Breakfast order")

    # The supervisor opens the same session in another browser and takes it over.
    supervisor.goto(f"{dashboard.url}/sessions?session={session_id}")
    wait_for_app(supervisor)
    sign_in(supervisor, SUPERVISOR)
    expect(_message(supervisor, "Two muffins please").first).to_be_visible()
    supervisor.get_by_role("button", name="Take over", exact=True).click()
    expect(supervisor.get_by_text("You took the conversation over.")).to_be_visible()

    # The person writes again: the supervisor sees it live, the agent stays silent.
    expect(user.get_by_text("A person from the team is handling this conversation.")).to_be_visible()
    _write(user, "Hello, are you there?")
    expect(_message(user, "Hello, are you there?")).to_be_visible()
    wait_for_app(user)
    expect(_message(supervisor, "Hello, are you there?")).to_be_visible()
    assert _roles(dashboard, session_id) == ["user", "assistant", "user"]
    expect(_message(user, "You said: 'Hello, are you there?'")).to_have_count(0)

    # The supervisor injects; the person sees it, marked as not seen by the agent.
    supervisor.get_by_label("Message to the user (the agent never sees it)").fill(NOTE)
    supervisor.get_by_role("button", name="Inject", exact=True).click()
    expect(supervisor.get_by_text("Message sent to the user.")).to_be_visible()
    expect(_message(user, NOTE)).to_be_visible()
    expect(_message(user, NOTE).get_by_text("not seen by the agent")).to_be_visible()

    # The model history hides the supervisor's message.
    supervisor.get_by_text("Full history", exact=True).click()
    wait_for_app(supervisor)
    expect(_message(supervisor, NOTE)).to_have_count(0)
    expect(_message(supervisor, "Hello, are you there?")).to_be_visible()
    supervisor.get_by_text("Full history", exact=True).click()
    expect(_message(supervisor, NOTE)).to_be_visible()

    # Released, the agent answers again, given only user and agent messages.
    supervisor.get_by_role("button", name="Release", exact=True).click()
    expect(supervisor.get_by_text("The agent answers again.")).to_be_visible()
    expect(user.get_by_text("A person from the team is handling this conversation.")).to_have_count(0)
    _write(user, "Scones then")
    answer = _message(user, "You said: 'Scones then'")
    expect(answer).to_be_visible()
    expect(answer).to_contain_text("I was given 4 message(s)")  # 3 user + 1 agent, no supervisor
    expect(_message(supervisor, "You said: 'Scones then'")).to_be_visible()
    assert _roles(dashboard, session_id) == ["user", "assistant", "user", "supervisor", "user", "assistant"]
