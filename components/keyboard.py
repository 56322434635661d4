"""Keyboard shortcuts for the Inbox and the Approval page (a small script in the page).

Inbox: ``j``/``k`` move the selection through the rows, ``Enter`` or ``o``
opens the selected request, ``x`` ticks it for a bulk decision, and ``a``,
``r`` or ``e`` open it with the Approve button, the Reject button or the
first field of the answer form focused (one more Enter decides: a key never
decides a request its reader has not seen). Approval page: ``a`` clicks
Approve, ``r`` Reject, ``e`` focuses the answer form's first field as drawn
(the answer's fields, then the call's Edit fields, then the comment). ``?`` shows the
keys anywhere; ``Esc`` hides them. Keys are ignored while typing in a field.

The script is installed once per browser tab (Streamlit changes pages
without reloading the document) and finds the page and its elements when a
key is pressed, through the ``st-key-*`` classes of our widgets' keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

HELP = (
    ("j / k", "next / previous request (Inbox)"),
    ("Enter or o", "open the selected request (Inbox)"),
    ("x", "tick the selected request for a bulk decision (Inbox)"),
    ("a", "Approve (on a request; in the Inbox: open it with Approve focused)"),
    ("r", "Reject (on a request; in the Inbox: open it with Reject focused)"),
    ("e", "edit: focus the first field of the answer or the call"),
    ("?", "show or hide this list"),
)

SCRIPT = Path(__file__).with_name("keyboard.js")


def keyboard_shortcuts(page: str) -> None:
    """Install the shortcuts (once per tab) and say that ``?`` lists them."""
    script = SCRIPT.read_text(encoding="utf-8").replace("__HELP__", json.dumps(HELP))
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)
    where = "j/k move, Enter opens, a/r/e" if page == "inbox" else "a approves, r rejects, e edits"
    st.caption(f"Keyboard: {where}; press ? for the list of keys.")
