"""Inbox rows: one bordered row per request waiting for the signed-in person.

Every value in a row but the time left may have been written by an agent
(the title, the workflow and step names, who asked), so each is shown as
text (``components.text.md``): the row's only link is the one we draw to the
request's Approval page, from its id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import streamlit as st

from components.badges import badge_markdown
from components.nav import APPROVAL_PAGE
from components.text import md
from core.approvals import inbox as reports
from core.base.clock import utcnow

if TYPE_CHECKING:
    from core.approvals.inbox import InboxItem


def ago(value: datetime) -> str:
    seconds = (utcnow() - value).total_seconds()
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{int(seconds // 60)} min ago"
    if seconds < 172800:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def inbox_rows(
    approvals: Sequence[InboxItem],
    names: dict[str, str],
    channels: dict[str, list[str]],
    *,
    pick_key: str | None = None,
    pickable: frozenset[str] = frozenset(),
    answered: frozenset[str] = frozenset(),
    empty: str = "Nothing is waiting for you.",
) -> None:
    """One bordered row per request, its title (as text) linking to the Approval page.

    With ``pick_key``, each request in ``pickable`` (yes/no requests the reader may
    answer now) has a checkbox (key ``pick_key + id``) for the bulk decision. A request
    in ``answered`` (the reader answered it at its level) says it waits for the others.
    """
    if not approvals:
        st.info(empty, icon=":material/done_all:")
        return
    for approval in approvals:
        with st.container(border=True, key=f"inbox.row.{approval.id}"):
            if pick_key is not None:
                pick, left, right = st.columns([0.3, 4, 1], vertical_alignment="center")
                if approval.id in pickable:
                    pick.checkbox(
                        "Select",
                        key=pick_key + approval.id,
                        label_visibility="collapsed",
                        help="Tick to approve or reject with the others below",
                    )
            else:
                left, right = st.columns([4, 1])
            with left:
                st.page_link(
                    APPROVAL_PAGE,
                    label=md(approval.title) or "(untitled)",
                    icon=":material/approval:",
                    query_params={"approval": approval.id},
                )
                workflow = names.get(approval.workflow_id or "", "no workflow")
                via = ", ".join(channels.get(approval.id, [])) or "dashboard"
                st.caption(
                    f"{md(workflow)} · step {md(approval.step_name or '-')} · "
                    f"{badge_markdown(approval.approval_type)} · via {md(via)} · "
                    f"asked by {md(approval.requested_by)} · {ago(approval.created_at)} · "
                    + (
                        f"you answered, waiting for the others of {md(', '.join(approval.approvers))}"
                        if approval.id in answered
                        else f"waiting for {md(', '.join(approval.approvers))}"
                    )
                )
            with right:
                left_text = reports.time_left(approval.expires_at)
                urgent = reports.is_urgent(approval.expires_at)
                st.markdown(f":red[**{md(left_text)}**]" if urgent else f"**{md(left_text)}**")
