"""A plain notice instead of a traceback while the database cannot be reached.

Wrap what reads the database (app.py wraps the services, the sign-in and the
page): a database outage (core.base.retry.is_database_unavailable) shows one
warning and stops the run; a small fragment pings the database every few
seconds and reruns the whole app once it answers, so the page comes back by
itself in the same server process. Any other error passes through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

import streamlit as st
import structlog

from components.services import database_url
from core.base.retry import database_answers, is_database_unavailable
from core.runtime import database

log = structlog.get_logger(__name__)

RETRY_SECONDS = 5
NOTICE = (
    "The database is unavailable; retrying every {seconds} seconds. "
    "This page comes back by itself once it answers."
)


@st.fragment(run_every=RETRY_SECONDS)
def _retry_when_back() -> None:
    if database_answers(database(database_url())):
        st.rerun(scope="app")
    st.caption(f"Last tried at {datetime.now(UTC):%H:%M:%S} UTC.")


@contextlib.contextmanager
def database_outage_notice() -> Iterator[None]:
    """Show the outage notice (and stop this run) if the database is unreachable inside."""
    try:
        yield
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        log.warning(
            "dashboard: database unavailable",
            error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        st.warning(NOTICE.format(seconds=RETRY_SECONDS), icon=":material/cloud_off:")
        _retry_when_back()
        st.stop()
