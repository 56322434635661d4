"""Execution logs: every agent step, tool call and model error, filterable, as CSV."""

from __future__ import annotations

import streamlit as st

from components.auth import signed_in
from components.execution_logs import execution_logs_view
from components.services import get_services

user = signed_in()
db = get_services().db

st.title("Execution logs")
st.caption(
    "Every agent step, tool call, model error and final answer, from workflows and chat "
    "sessions, newest first. The export holds every row the applied filters match."
)
execution_logs_view(db, user)
