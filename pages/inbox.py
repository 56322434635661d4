"""Inbox: the requests waiting for the signed-in person (and their groups; for admins,
every pending one), searched, sorted and paged, kept live without reloading the page."""

from __future__ import annotations

import streamlit as st

from components.auth import signed_in
from components.inbox_live import live_inbox
from components.keyboard import keyboard_shortcuts
from components.services import get_services

user = signed_in()
st.title("Inbox")
live_inbox(get_services().db, user.email, can_answer=user.can_answer)
keyboard_shortcuts("inbox")
