"""Page links wait for the run in progress: a small script installed once per tab.

Why: a widget inside a fragment (an Inbox row's tick box) starts a fragment
run; a page link followed a moment later (a click, or Enter in the Inbox)
starts the new page's run, and Streamlit 1.67 can then finish the stale
fragment request after it and leave the new page blank until the next
interaction. The guard holds a page link's click (``st.page_link`` and the
sidebar's) while a run is going, or a widget was used less than ``SETTLE_MS``
ago and its run has not yet been seen to end (the server announces a run a
moment after the click), then lets it through, after at most ``MAX_WAIT_MS``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

MAX_WAIT_MS = 5_000
SETTLE_MS = 1_500
POLL_MS = 50
SCRIPT = Path(__file__).with_name("link_guard.js")


def link_guard() -> None:
    """Install the guard in this tab (the script does nothing the second time)."""
    script = (
        SCRIPT.read_text(encoding="utf-8")
        .replace("__MAX_WAIT_MS__", str(MAX_WAIT_MS))
        .replace("__SETTLE_MS__", str(SETTLE_MS))
        .replace("__POLL_MS__", str(POLL_MS))
    )
    with st.sidebar:
        st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)
