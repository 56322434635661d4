"""The live inbox: views, counts, filters, the list and bulk decisions, redrawn every few
seconds by one fragment, with a toast for each new request and the count in the tab title.

Everything it reads comes from ``core.approvals.inbox_views`` and ``core.approvals.inbox``;
bulk decisions go through ``core.approvals.bulk`` (one normal vote each).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import streamlit as st

from components.inbox import inbox_rows
from components.outage import database_outage_notice
from components.text import md
from core.approvals import inbox as reports
from core.approvals import inbox_views
from core.approvals.bulk import decide_many
from core.base.errors import CountersignError
from core.engine.after_decision import what_next

if TYPE_CHECKING:
    from core.store.db import Database

REFRESH_SECONDS = 3
SEEN = "inbox.seen"  # ids of the requests already shown (to toast only new ones)
BULK_RESULT = "inbox.bulk.result"
BULK_RESULT_SECONDS = 60  # how long the outcome of a bulk decision stays on screen
PICK = "inbox.pick."
MAX_SEEN = 500


def tab_title(waiting: int) -> None:
    """The count in the browser tab's title, e.g. "(3) Inbox · Countersign"."""
    title = f"({waiting}) Inbox · Countersign" if waiting else "Inbox · Countersign"
    # JSON-encoded, so the title is a string literal whatever it holds.
    st.html(f"<script>document.title = {json.dumps(title)};</script>", unsafe_allow_javascript=True)


def announce_new(db: Database, email: str) -> None:
    """A toast for each request that arrived since the last redraw (none on the first)."""
    newest = inbox_views.newest_waiting(db, email)
    seen: set[str] | None = st.session_state.get(SEEN)
    if seen is not None:
        for approval_id, title in reversed(newest):
            if approval_id not in seen:
                st.toast(f"New request: {md(title) or '(untitled)'}", icon=":material/inbox:")
    kept = (seen or set()) | {i for i, _ in newest}
    st.session_state[SEEN] = kept if len(kept) <= MAX_SEEN else {i for i, _ in newest}


def _counts(summary: reports.InboxSummary, counts: dict[inbox_views.View, int]) -> None:
    columns = st.columns(4)
    columns[0].metric("Waiting for you", summary.total, border=True)
    columns[1].metric(
        f"Expiring within {reports.EXPIRING_SOON_WITHIN.total_seconds() / 3600:g} h",
        summary.expiring_soon,
        border=True,
    )
    columns[2].metric("For your groups", counts.get("groups", 0), border=True)
    if "all" in counts:
        columns[3].metric("All pending", counts["all"], border=True)
    if summary.by_type:
        st.caption(" · ".join(f"{md(kind)} **{count}**" for kind, count in summary.by_type.items()))


def _controls(
    summary: reports.InboxSummary, views: tuple[inbox_views.View, ...], counts: dict[inbox_views.View, int]
) -> dict[str, Any]:
    view = st.segmented_control(
        "View",
        list(views),
        key="inbox.view",
        default="mine",
        required=True,
        format_func=lambda v: f"{inbox_views.VIEW_LABELS[v]} ({counts.get(v, 0)})",
    )
    search_col, sort_col, size_col = st.columns([3, 2, 1])
    search = search_col.text_input(
        "Search",
        key="inbox.search",
        max_chars=inbox_views.MAX_SEARCH,
        placeholder="Title, workflow or requester",
    )
    sort = sort_col.selectbox(
        "Sort by", list(inbox_views.SORTS), key="inbox.sort", format_func=lambda s: inbox_views.SORT_LABELS[s]
    )
    page_size = size_col.selectbox("Per page", list(inbox_views.PAGE_SIZES), index=1, key="inbox.page_size")
    workflow_col, type_col, channel_col = st.columns(3)
    workflow_id = workflow_col.selectbox(
        "Workflow",
        [None, *summary.by_workflow],
        key="inbox.workflow",
        format_func=lambda w: "All workflows" if w is None else summary.by_workflow[w][0],
        help="The workflows of your most urgent requests.",
    )
    approval_type = type_col.selectbox(
        "Type",
        [None, *summary.types],
        key="inbox.type",
        format_func=lambda t: "All types" if t is None else f"{t} ({summary.by_type.get(t, 0)})",
    )
    channel = channel_col.selectbox(
        "Channel",
        [None, *summary.channels],
        key="inbox.channel",
        format_func=lambda c: "All channels" if c is None else f"Sent by {c}",
    )
    return {
        "view": view or "mine",
        "search": search or "",
        "sort": sort,
        "page_size": int(page_size),
        "workflow_id": workflow_id,
        "approval_type": approval_type,
        "channel": channel,
    }


def _bulk(db: Database, email: str, choosable: list[str]) -> None:
    """One form: a comment and Approve / Reject for the ticked binary requests."""
    # Kept for a while, not popped: the timed redraw every few seconds would
    # otherwise wipe the outcome before the approver has read it.
    result = st.session_state.get(BULK_RESULT)
    if result and time.monotonic() - result[2] < BULK_RESULT_SECONDS:
        kind, text, _ = result
        (st.success if kind == "ok" else st.error)(text)
    if not choosable:
        return
    with st.form("inbox.bulk", enter_to_submit=False, border=True):
        st.markdown("**Decide the ticked requests** (yes/no requests only)")
        comment = st.text_input("Comment for all of them", key="inbox.bulk.comment")
        row = st.container(horizontal=True)
        with row:
            approve = st.form_submit_button(
                "Approve selected", key="inbox.bulk.approve", icon=":material/done_all:"
            )
            reject = st.form_submit_button(
                "Reject selected", key="inbox.bulk.reject", icon=":material/block:"
            )
    if not (approve or reject):
        return
    picked = [i for i in choosable if st.session_state.get(PICK + i)]
    try:
        outcomes = decide_many(db, picked, email, "approve" if approve else "reject", comment=comment or "")
    except CountersignError as exc:
        st.session_state[BULK_RESULT] = ("error", str(exc), time.monotonic())
    else:
        done = [o for o in outcomes if not o.message]
        lines = [f"- {md(o.title)}: {md(o.message)}" for o in outcomes if o.message]
        verb = "approved" if approve else "rejected"
        text = f"You {verb} {len(done)} of {len(outcomes)} selected requests."
        # Where each decided request's workflow goes next, as the Approval page says it.
        going = [(o.title, what_next(db, o.approval_id, viewer=email)) for o in done]
        nexts = [f"- {md(title)}: {md(said.sentence)}" for title, said in going if said is not None]
        outcome_text = "\n".join([text, *nexts, *lines])
        st.session_state[BULK_RESULT] = ("ok" if not lines else "error", outcome_text, time.monotonic())
        # Refused ones too: each was decided or answered meanwhile, and is not offered again.
        for outcome in outcomes:
            st.session_state.pop(PICK + outcome.approval_id, None)
    st.rerun(scope="fragment")


def live_inbox(db: Database, email: str, *, can_answer: bool) -> None:
    """The whole inbox, redrawn every ``REFRESH_SECONDS`` without reloading the page."""

    @st.fragment(run_every=REFRESH_SECONDS)
    @database_outage_notice()  # its timed reruns run outside app.py's guard
    def body() -> None:
        summary = reports.inbox_summary(db, email)
        views = inbox_views.views_for(db, email)
        counts = inbox_views.view_counts(db, email)
        tab_title(summary.total)
        announce_new(db, email)
        _counts(summary, counts)
        chosen = _controls(summary, views, counts)
        page_key = "inbox.page"
        query = inbox_views.InboxQuery(page=int(st.session_state.get(page_key, 1)), **chosen)
        try:
            found = inbox_views.inbox_page(db, email, query)
        except CountersignError as exc:
            st.error(str(exc))
            return
        pages = max(1, -(-found.total // query.page_size))
        if query.page > pages:
            st.session_state[page_key] = pages
            st.rerun(scope="fragment")
        channels = reports.channels_of(db, [a.id for a in found.rows])
        # A tick box on each yes/no request the user may answer now (in "All pending"
        # too: an admin ticks only what they may answer themselves; never a request
        # they answered at its level, nor their own unless it allows self-approval).
        choosable = (
            [a.id for a in found.rows if a.approval_type == "binary" and a.id in found.answerable]
            if can_answer
            else []
        )
        inbox_rows(
            found.rows,
            found.workflow_names,
            channels,
            pick_key=PICK if can_answer else None,
            pickable=frozenset(choosable),
            answered=found.answered,
            empty="Nothing is waiting for you." if query.view != "all" else "Nothing is pending.",
        )
        if pages > 1:
            st.number_input(f"Page (of {pages})", 1, pages, key=page_key)
        _bulk(db, email, choosable)

    body()
