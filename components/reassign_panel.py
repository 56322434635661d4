"""Reassign a request (an admin) or hand it on (one of its approvers): one form."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from components.text import md
from core.approvals.reassign import can_reassign, reassign
from core.base.errors import CountersignError

if TYPE_CHECKING:
    from core.approvals.inbox import ApprovalDetail
    from core.store.db import Database

DONE = "approval.reassigned"


def reassign_panel(db: Database, approval: ApprovalDetail, actor: str) -> None:
    """The Reassign form under an open request, for those who may reassign this one: an admin,
    or an approver asked to answer it now."""
    done = st.session_state.pop(DONE, None)
    if done:
        st.success(done, icon=":material/person_check:")
    if not can_reassign(db, approval, actor):  # the rule reassign() refuses by
        return
    with st.expander("Reassign this request", icon=":material/forward:"):
        st.caption(
            f"Now asked: {md(', '.join(approval.approvers))}. Reassigning replaces them for "
            "this level; votes already given stay, and the new approvers are notified."
        )
        with st.form("approval.reassign", enter_to_submit=False, border=False):
            to = st.text_input(
                "New approvers",
                key="approval.reassign.to",
                placeholder="emails or groups, separated by commas",
            )
            reason = st.text_input(
                "Reason", key="approval.reassign.reason", placeholder="Why (kept in the audit trail)"
            )
            submitted = st.form_submit_button(
                "Reassign", key="approval.reassign.submit", icon=":material/forward:"
            )
    if not submitted:
        return
    names = [part.strip() for part in (to or "").split(",") if part.strip()]
    try:
        changed = reassign(db, approval.id, actor, names, reason=reason or "")
    except CountersignError as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        st.error(
            "Nothing was changed:\n" + "\n".join(f"- {md(p)}" for p in problems), icon=":material/block:"
        )
        return
    st.session_state[DONE] = f"Reassigned to {', '.join(changed.approvers)}."
    st.rerun()
