"""Sessions: supervised conversations with an agent flow.

A person chats with a flow; a supervisor (an admin) watches, takes over, writes
to the person without the agent seeing it, and releases. The conversation is
re-read every few seconds, so each side sees the other's messages.
"""

from __future__ import annotations

import streamlit as st

from components import chat as ui
from components import nav
from components.auth import signed_in
from components.feedback import show_error
from components.services import get_services
from components.text import md
from core.base.errors import CountersignError
from core.conversations import access
from core.conversations import sessions as conv

CHOICE = "sessions.choice"
SELECT_NEXT = "sessions.select_next"

user = signed_in()
db = get_services().db

st.title("Sessions")
st.caption(
    "Conversations with an agent flow. A supervisor can take one over (the agent stops "
    "answering), write to the person (the agent never sees it) and release it."
)
if ui.NOTICE in st.session_state:
    st.success(st.session_state.pop(ui.NOTICE))

with st.expander("New session", expanded=False):
    flows = conv.flows_for(db, user.email)
    # One form: a title typed and Start clicked at once arrive together (a text box
    # outside a form reruns the page as it loses focus, which can swallow the click).
    with st.form("sessions.new", border=False, enter_to_submit=True):
        flow = st.selectbox(
            "Flow",
            [f.name for f in flows],
            key="sessions.new.flow",
            help="; ".join(f"{md(f.name)}: {md(f.description)}" for f in flows if f.description),
        )
        title = st.text_input("Title", key="sessions.new.title", placeholder="What is it about?")
        start = st.form_submit_button("Start session", type="primary", key="sessions.new.start")
    if start:
        try:
            started = conv.start_session(db, user.email, str(flow), title=title)
        except CountersignError as exc:
            show_error(exc)
        else:
            st.session_state[SELECT_NEXT] = started.id
            st.rerun()

sessions = conv.list_sessions(db, user.email)
if not sessions:
    st.info("No sessions yet: start one above.")
    st.stop()

with st.expander(f"All sessions ({len(sessions)})", expanded=user.is_admin):
    ui.session_table(sessions)

ids = [s.id for s in sessions]
wanted = st.session_state.pop(SELECT_NEXT, None) or st.query_params.get("session")
if wanted in ids:
    st.session_state[CHOICE] = wanted
labels = {s.id: ui.session_label(s) for s in sessions}
chosen = st.selectbox("Session", ids, key=CHOICE, format_func=lambda i: labels.get(i, i))
chat = conv.get_session(db, chosen if chosen in ids else ids[0], user.email)
can = access.abilities(db, chat, user.email)

typed = (
    st.chat_input("Write a message", key="sessions.input", disabled=not can.write)
    if chat.user_email == user.email
    else None
)
if typed:
    try:
        with st.spinner("The agent is answering..."):
            conv.post_user_message(db, chat.id, user.email, typed)
    except CountersignError as exc:
        show_error(exc)
    else:
        st.session_state.pop(ui.CACHE, None)

full = True
if can.supervise:
    full = st.toggle(
        "Full history",
        value=True,
        key="sessions.full_history",
        help="On: every message. Off: only what the model sees (user and agent).",
    )
    st.page_link(
        nav.LOGS_PAGE,
        label="Execution logs of this session",
        icon=":material/receipt_long:",
        query_params={"session": chat.id},
    )


@st.fragment(run_every=ui.POLL_SECONDS)
def conversation() -> None:
    now = ui.snapshot(db, chat.id, user.email, model_only=not full)
    current = now.chat
    held = f" · held by {md(current.supervisor)}" if current.supervisor else ""
    st.markdown(
        f"{ui.status_markdown(current.status)} **{md(current.title)}** · "
        f"{md(current.user_email)} · flow {md(current.flow)}{held}"
    )
    if current.status == "supervised" and current.user_email == user.email:
        st.caption("A person from the team is handling this conversation.")
    ui.draw_messages(now.messages)
    if now.can.supervise:
        ui.supervisor_controls(db, current, user.email, now.can)
    elif now.can.close and st.button("Close session", key="sessions.user_close"):
        ui.run_action(lambda: conv.close(db, current.id, user.email), "The conversation is closed.")


conversation()
