"""Approval widgets: inbox rows, the request's summary, votes, and the decision panel."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from components.badges import badge_markdown
from components.feedback import show_error
from components.nav import APPROVAL_PAGE, WORKFLOW_PAGE
from components.schema_form import schema_form
from core import reports
from core.approvals import ApprovalEngine
from core.db import Database
from core.definitions import ApprovalConfig
from core.errors import CountersignError
from core.models import ApprovalRequest, ApprovalResponse, utcnow

FLASH = "approval.flash"


def _ago(value: Any) -> str:
    seconds = (utcnow() - value).total_seconds()
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{int(seconds // 60)} min ago"
    if seconds < 172800:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def inbox_rows(approvals: Sequence[ApprovalRequest], names: dict[str, str],
               channels: dict[str, list[str]]) -> None:
    """One bordered row per request, its title linking to the Approval page."""
    if not approvals:
        st.info("Nothing is waiting for you.", icon=":material/done_all:")
        return
    for approval in approvals:
        with st.container(border=True, key=f"inbox.row.{approval.id}"):
            left, right = st.columns([4, 1])
            with left:
                st.page_link(APPROVAL_PAGE, label=approval.title, icon=":material/approval:",
                             query_params={"approval": approval.id})
                workflow = names.get(approval.workflow_id or "", "no workflow")
                via = ", ".join(channels.get(approval.id, [])) or "dashboard"
                st.caption(f"{workflow} · step {approval.step_name or '-'} · "
                           f"{badge_markdown(approval.approval_type)} · via {via} · "
                           f"asked by {approval.requested_by} · {_ago(approval.created_at)}")
            with right:
                left_text = reports.time_left(approval.expires_at)
                urgent = approval.expires_at is not None and \
                    (approval.expires_at - utcnow()).total_seconds() < 3600
                st.markdown(f":red[**{left_text}**]" if urgent else f"**{left_text}**")


def request_summary(approval: ApprovalRequest, workflow_name: str | None) -> None:
    st.title(approval.title)
    st.markdown(" ".join([badge_markdown(approval.status), badge_markdown(approval.approval_type),
                          f"level {approval.level + 1}" if approval.config.get("levels") else ""]))
    if approval.description:
        st.write(approval.description)
    facts = [f"Asked by **{approval.requested_by}**", f"approvers: {', '.join(approval.approvers)}",
             f"{approval.threshold} needed",
             reports.time_left(approval.expires_at) if approval.status == "pending" else ""]
    st.caption(" · ".join(f for f in facts if f))
    if approval.workflow_id:
        st.page_link(WORKFLOW_PAGE, label=f"Workflow: {workflow_name or approval.workflow_id}",
                     icon=":material/timeline:", query_params={"workflow": approval.workflow_id})
    proposed, context = st.columns(2)
    with proposed:
        st.subheader("Proposed action")
        if approval.proposed_action:
            st.json(approval.proposed_action, expanded=2)
        else:
            st.caption("No action was proposed; the step itself is what needs approval.")
    with context:
        st.subheader("Context")
        st.json(approval.context_data or {}, expanded=2)


def votes_table(responses: Sequence[ApprovalResponse]) -> None:
    st.subheader("Votes so far")
    if not responses:
        st.caption("No one has answered yet.")
        return
    st.dataframe(pd.DataFrame([{
        "when": r.created_at, "approver": r.approver, "level": r.level + 1, "decision": r.decision,
        "channel": r.channel, "comment": r.comment, "data": json.dumps(r.data) if r.data else "",
    } for r in responses]), hide_index=True, width="stretch", key="approval.votes")


def outcome(approval: ApprovalRequest) -> None:
    """The decision, in place of the buttons."""
    who = f" by {approval.decided_by}" if approval.decided_by else ""
    when = f" at {approval.decided_at:%Y-%m-%d %H:%M} UTC" if approval.decided_at else ""
    text = f"This request was **{approval.status}**{who}{when}. It cannot be answered again."
    if approval.status in ("approved", "modified"):
        st.success(text, icon=":material/check_circle:")
    elif approval.status == "cancelled":
        st.warning(text, icon=":material/block:")
    else:
        st.error(text, icon=":material/cancel:")
    if approval.decision_data:
        st.json(approval.decision_data, expanded=True)


def _respond(engine: ApprovalEngine, approval: ApprovalRequest, user: str, decision: str,
             data: dict[str, Any] | None, comment: str) -> None:
    try:
        engine.respond_to_approval(approval.id, user, decision, data=data, comment=comment,
                                   channel="dashboard")
    except CountersignError as exc:
        show_error(exc)
        return
    st.session_state[FLASH] = {"reject": "You rejected the request.",
                               "modify": "You approved the request with changes."}.get(
        decision, "You approved the request.")
    st.rerun()


def decision_panel(db: Database, engine: ApprovalEngine, approval: ApprovalRequest,
                   user: Any, responses: Sequence[ApprovalResponse]) -> None:
    """Form, comment and Approve / Reject (/ Approve with changes), or why not."""
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.success(flash)
    if approval.status != "pending":
        outcome(approval)
        return
    if approval.expires_at is not None and approval.expires_at <= utcnow():
        st.error(f"This request expired at {approval.expires_at:%Y-%m-%d %H:%M} UTC; it can no "
                 "longer be answered.", icon=":material/timer_off:")
        return
    mine = [r for r in responses if r.approver == user.email and r.level == approval.level]
    if mine:
        st.info(f"You answered **{mine[0].decision}** {_ago(mine[0].created_at)}; waiting for "
                f"the other approvers ({approval.threshold} needed).")
        return
    if not user.can_answer:
        st.info("You are signed in as a viewer: you can read this request but not answer it.")
        return
    if not reports.is_asked(db, approval, user.email):
        st.info(f"You are not among this request's approvers ({', '.join(approval.approvers)}).")
        return

    modify_allowed = ApprovalConfig.model_validate(approval.config).modify_allowed
    mode_key = f"approval.{approval.id}.changes"
    changing = bool(st.session_state.get(mode_key)) and modify_allowed
    st.subheader("Your answer")
    comment = st.text_area("Comment", key="approval.comment",
                           placeholder="Why you decide as you do (kept in the audit trail)")
    changes: dict[str, Any] | None = None
    if changing and approval.approval_type == "binary":
        raw = st.text_area("Changes to the proposed action (JSON)", key="approval.changes",
                           value=json.dumps(approval.proposed_action or {}, indent=2))
        try:
            parsed = json.loads(raw or "{}")
            changes = parsed if isinstance(parsed, dict) else None
        except ValueError:
            changes = None
    data = schema_form(approval.response_schema or {"type": "object"}, key="approval.form",
                       ui_schema=approval.ui_schema or None,
                       submit_label="Approve with changes" if changing else "Approve")
    if data is not None:
        if changing and approval.approval_type == "binary":
            if changes is None:
                st.error("Changes to the proposed action: not a JSON object.")
                return
            data = {**data, "changes": changes}
        _respond(engine, approval, user.email, "modify" if changing else "approve", data, comment)
    buttons = st.container(horizontal=True)
    if buttons.button("Reject", key="approval.reject", type="secondary", icon=":material/close:"):
        _respond(engine, approval, user.email, "reject", None, comment)
    if modify_allowed:
        if changing:
            if buttons.button("Back to plain approval", key="approval.plain"):
                st.session_state[mode_key] = False
                st.rerun()
        elif buttons.button("Approve with changes", key="approval.modify", icon=":material/edit:"):
            st.session_state[mode_key] = True
            st.rerun()
