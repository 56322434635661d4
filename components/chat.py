"""Drawing supervised conversations: the session list, the messages, the
supervisor's controls. Everything it knows comes from core.conversations.sessions.

Messages (the agent's and people's), titles and names are text: messages are
drawn with ``st.text`` (no Markdown at all), the rest escaped
(``components.text.md``) where it sits in our own Markdown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import streamlit as st

from components.feedback import show_error
from components.text import md
from core.base.errors import CountersignError
from core.conversations import access
from core.conversations import sessions as conv

if TYPE_CHECKING:
    from core.store.db import Database
    from core.store.tables import ChatMessage, ChatSession

POLL_SECONDS = 2.0
AVATARS = {
    "user": ":material/person:",
    "assistant": ":material/smart_toy:",
    "supervisor": ":material/support_agent:",
}
SESSION_COLOURS = {"active": "green", "supervised": "orange", "closed": "gray"}
NOTICE = "sessions.notice"
CACHE = "sessions.cache"


def status_markdown(status: str) -> str:
    return f":{SESSION_COLOURS.get(status, 'gray')}-badge[{status}]"


def session_label(chat: ChatSession) -> str:
    # Stable while the session lives: Streamlit matches a selectbox's value
    # by its label, so a label holding the status would lose the choice.
    return f"{chat.title} · {chat.user_email} · {chat.id[:8]}"


def session_table(sessions: Sequence[ChatSession]) -> None:
    """One line per session: status badge, title, who, flow, last change."""
    for chat in sessions:
        supervisor = f" · held by {md(chat.supervisor)}" if chat.supervisor else ""
        st.markdown(
            f"{status_markdown(chat.status)} **{md(chat.title)}** · {md(chat.user_email)} · "
            f"flow {md(chat.flow)} · {chat.updated_at:%Y-%m-%d %H:%M} UTC{supervisor}"
        )


@dataclass(frozen=True)
class Snapshot:
    chat: ChatSession
    can: access.Abilities
    messages: list[ChatMessage]


def snapshot(db: Database, chat_id: str, email: str, *, model_only: bool) -> Snapshot:
    """The session, what this person may do in it and the messages to draw,
    re-read only when the session changed: each poll costs one small query
    (the change marker) while nothing happens."""
    marker = (chat_id, email, model_only, *conv.change_marker(db, chat_id))
    cached = st.session_state.get(CACHE)
    if isinstance(cached, tuple) and cached[0] == marker:
        return cast(Snapshot, cached[1])
    chat = conv.get_session(db, chat_id, email)
    read = conv.model_history if model_only else conv.full_history
    found = Snapshot(chat, access.abilities(db, chat, email), read(db, chat_id, email))
    st.session_state[CACHE] = (marker, found)
    return found


def draw_messages(messages: Sequence[ChatMessage]) -> None:
    if not messages:
        st.caption("No messages yet.")
    for message in messages:
        with st.chat_message(message.role, avatar=AVATARS.get(message.role)):
            if message.role == "supervisor":
                st.caption(f"Supervisor {md(message.author)} (not seen by the agent)")
            st.text(message.content)


def run_action(action: Callable[[], object], notice: str) -> None:
    """Call core; a refusal is shown as its sentence, a success reruns the page."""
    try:
        action()
    except CountersignError as exc:
        show_error(exc)
    else:
        st.session_state[NOTICE] = notice
        st.session_state.pop(CACHE, None)
        st.rerun()


def supervisor_controls(db: Database, chat: ChatSession, email: str, can: access.Abilities) -> None:
    take, release, close = st.columns(3)
    if can.take_over and take.button(
        "Take over",
        type="primary",
        key="sessions.take_over",
        help="The agent stops answering; you write to the user.",
    ):
        run_action(lambda: conv.take_over(db, chat.id, email), "You took the conversation over.")
    if can.release and release.button(
        "Release", key="sessions.release", help="The agent answers again; it never sees your messages."
    ):
        run_action(lambda: conv.release(db, chat.id, email), "The agent answers again.")
    if can.close and close.button("Close session", key="sessions.close"):
        run_action(lambda: conv.close(db, chat.id, email), "The conversation is closed.")
    if can.inject:
        with st.form("sessions.inject_form", clear_on_submit=True, border=False):
            text = st.text_area("Message to the user (the agent never sees it)", key="sessions.inject_text")
            if st.form_submit_button("Inject", key="sessions.inject"):
                run_action(lambda: conv.inject(db, chat.id, email, text), "Message sent to the user.")
    elif chat.status == "supervised" and chat.supervisor != email:
        st.caption(f"{md(chat.supervisor)} holds this conversation.")
