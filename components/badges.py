"""Status badges: the same colour for a status on every page."""

from __future__ import annotations

import streamlit as st

# Streamlit's badge colours.
STATUS_COLOURS = {
    "pending": "orange",
    "running": "blue",
    "waiting_approval": "orange",
    "paused": "gray",
    "completed": "green",
    "failed": "red",
    "cancelled": "gray",
    "approved": "green",
    "modified": "green",
    "rejected": "red",
    "expired": "red",
    "approve": "green",
    "modify": "green",
    "reject": "red",
    "admin": "violet",
    "approver": "blue",
    "viewer": "gray",
}


def badge_markdown(status: str) -> str:
    """Inline markdown, e.g. ``:green-badge[completed]``."""
    colour = STATUS_COLOURS.get(status, "gray")
    label = status.replace("_", " ").replace("[", "(").replace("]", ")")
    return f":{colour}-badge[{label}]"


def status_badge(status: str) -> None:
    """A badge on its own line."""
    st.badge(status.replace("_", " "), color=STATUS_COLOURS.get(status, "gray"))  # type: ignore[arg-type]
