"""What a workflow waits for and where it stands, said the same way on every page."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from components.nav import APPROVAL_PAGE
from components.text import md
from core.approvals import inbox as reports
from core.engine.waits import Waiting


def position_text(status: str, current_step: int, steps: list[str]) -> str:
    """Where the workflow stands: "step 2 of 4 (review)", or how it ended."""
    total = len(steps)
    if status == "completed":
        return f"finished: all {total} steps done"
    at = steps[current_step] if current_step < total else None
    where = f"step {current_step + 1} of {total} (**{md(at)}**)" if at else f"after step {total}"
    if status == "cancelled":
        return f"cancelled at {where}"
    if status == "failed":
        return f"failed at {where}"
    return where


def waiting_notice(waits: Sequence[Waiting], *, key: str) -> None:
    """One line per open request: who is asked, to answer what, by when, and a link to it.

    Always one container (empty when nothing waits), so what follows keeps its
    place when the last request is answered (Streamlit would reset tabs after it).
    """
    outer = st.container(key=key)
    for index, wait in enumerate(waits):
        level = f" (level {wait.level} of {wait.levels})" if wait.levels > 1 else ""
        left = reports.time_left(wait.expires_at)
        with outer, st.container(border=True, key=f"{key}.{index}"):
            st.markdown(
                f":material/hourglass_top: Waits for **{md(', '.join(wait.approvers))}** "
                f"to answer **{md(wait.title)}**{level} · {md(left)}"
            )
            st.page_link(
                APPROVAL_PAGE,
                label="Open the request",
                icon=":material/approval:",
                query_params={"approval": wait.approval_id},
            )
