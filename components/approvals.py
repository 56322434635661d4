"""Approval widgets: inbox rows, what a request shows and what approving does, votes,
and the one answer form.

Everything a request shows comes from ``core.approvals.presentation.request_view``;
the page never reads the request's JSON itself. Every value in a view may
have been written by an agent, so it is shown as text: in dataframes, with
``st.text``, or escaped (``md``) where it sits inside our own Markdown.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from components.badges import badge_markdown
from components.inbox import ago
from components.nav import WORKFLOW_PAGE
from components.policies import Allow, allow_fields
from components.schema_form import Fields, schema_fields
from components.text import md
from core.approvals import inbox as reports
from core.approvals import standing_rules
from core.approvals.edits import changed_arguments, record_shown_answer
from core.approvals.presentation import (
    RequestView,
    answer_confirmation,
    approval_page,
    approve_with_changes_applies,
    plain,
)
from core.base.clock import utcnow
from core.base.errors import CountersignError, InvalidResponse
from core.definitions.approval import ApprovalConfig
from core.engine.after_decision import what_next

if TYPE_CHECKING:
    from core.approvals.engine import ApprovalEngine
    from core.approvals.inbox import ApprovalDetail
    from core.store.db import Database

FLASH = "approval.flash"
# Per request: the (level, call digest) its answer form was last drawn for.
DRAWN_FOR = "approval.drawn_for"
NOT_DRAWN = (
    "This page had not been drawn for the request as it is now when you answered: "
    "check the request above and answer again."
)
ANSWER_FORM = "approval.answer"
EDIT_KEY = "approval.edit"
NEXT_KEY = "approval.next"
# A string argument longer than this (or with a line break) is edited in a text area.
LONG_TEXT = 40


def _text_table(rows: list[dict[str, Any]], key: str) -> None:
    """Rows of agent-written values as a read-only table of plain text cells."""
    frame = pd.DataFrame([{k: plain(v) if v is not None else "" for k, v in row.items()} for row in rows])
    st.dataframe(frame, hide_index=True, width="stretch", key=key)


def argument_order(view: RequestView) -> list[str]:
    """The call's argument names in one order on every database: the tool's required
    arguments as its signature lists them, then the others by name.

    (PostgreSQL's JSONB keeps no key order, so neither the arguments nor the
    schema's properties come back in the order they were written.)
    """
    schema = view.edit_schema if isinstance(view.edit_schema, dict) else {}
    listed = schema.get("properties")
    names = {row.name for row in view.arguments} | set(listed if isinstance(listed, dict) else {})
    required = [n for n in schema.get("required") or [] if n in names]
    return list(dict.fromkeys(required)) + sorted(names - set(required))


def request_summary(view: RequestView, workflow_id: str | None, workflow_name: str | None) -> None:
    """Title, who asked, and what approving does: the call, its amount and what changes."""
    st.title(md(view.title))
    st.markdown(" ".join([badge_markdown(view.status), badge_markdown(view.approval_type)]))
    if view.notice:  # a veto window: when the call runs unless someone vetoes it
        st.warning(
            md(view.notice) + ". **Veto** stops it; **Run now** releases it at once.", icon=":material/timer:"
        )
    if view.description:
        st.text(view.description)
    st.caption(f"Asked by {md(view.requested_by)}")
    if workflow_id:
        st.page_link(
            WORKFLOW_PAGE,
            label=f"Workflow: {md(workflow_name or workflow_id)}",
            icon=":material/timeline:",
            query_params={"workflow": workflow_id},
        )
    st.subheader("What approving does")
    if view.tool is not None:
        st.markdown(f"Approving runs the tool **{md(view.tool)}** with these arguments:")
        changed = any(row.changed for row in view.arguments)
        order = {name: index for index, name in enumerate(argument_order(view))}
        rows: list[dict[str, Any]] = []
        for row in sorted(view.arguments, key=lambda r: order.get(r.name, len(order))):
            cells = {"argument": row.name, "proposed": row.proposed}
            if changed:
                cells["now"] = row.now if row.changed else ""
            rows.append(cells)
        _text_table(rows, "approval.call")
    else:
        st.markdown("Approving lets the workflow go on; this request runs no tool itself.")
    if view.amount_text:
        st.markdown(f"**Amount:** {md(view.amount_text)}")
        if view.amount_note:
            st.caption(md(view.amount_note[:1].upper() + view.amount_note[1:]))
    if view.changes:
        st.markdown("**What approving changes** (the call that runs, against the proposal):")
        _text_table(view.changes, "approval.changes")
    if view.facts:
        st.markdown("**Facts**")
        _text_table([{"what": label, "value": value} for label, value in view.facts], "approval.facts")
    st.markdown(
        f"**Approvers:** {md(view.chain)}  \n"
        f"**Votes:** {view.approvals_so_far} of {view.threshold} needed  \n"
        f"{md(view.time_left)}"
    )
    if view.edits_by_others:
        st.warning("  \n".join(md(line) for line in view.edits_lines()))


def votes_table(view: RequestView) -> None:
    st.subheader("Votes so far")
    if not view.votes:
        st.caption("No one has answered yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": v["at"],
                    "approver": v["approver"],
                    "level": v["level"],
                    "decision": v["decision"],
                    "channel": v["channel"],
                    "comment": v["comment"],
                    "data": json.dumps(v["data"], ensure_ascii=False, default=str) if v["data"] else "",
                }
                for v in view.votes
            ]
        ),
        hide_index=True,
        width="stretch",
        key="approval.votes",
    )


def outcome(db: Database, approval: ApprovalDetail, view: RequestView, viewer: str) -> None:
    """The decision and who made it (``RequestView.outcome``), and where the workflow goes
    next, in place of the buttons.

    A rejection is a person's decision, not a failure: a warning, as a cancellation."""
    said = view.outcome
    word, detail = (said.word, said.detail) if said is not None else (approval.status, "")
    # Account emails, a time and the engine's own words: no agent text.
    text = f"This request was **{word}**{detail}. It cannot be answered again."
    if approval.status in ("approved", "modified"):
        st.success(text, icon=":material/check_circle:")
    elif approval.status == "rejected":
        st.warning(text, icon=":material/do_not_disturb_on:")
    elif approval.status == "cancelled":
        st.warning(text, icon=":material/block:")
    else:
        st.error(text, icon=":material/cancel:")
    where_next(db, approval.id, viewer)
    rule_id = (approval.decision_data or {}).get("rule_id")
    if rule_id is not None:
        st.caption(f"Released without asking by standing rule {md(rule_id)} (see Policies).")
    if approval.decision_data:
        st.json(approval.decision_data, expanded=True)


def where_next(db: Database, approval_id: str, viewer: str) -> None:
    """Where the workflow goes after this decision (``core.engine.after_decision``), with a
    link to it: "The workflow resumes at step 'deploy'."; a stop a warning, not an error."""
    said = what_next(db, approval_id, viewer=viewer)
    if said is None:
        return
    with st.container(key=NEXT_KEY):
        # Step names and request titles may be an agent's words: escaped.
        if said.stopped:
            st.warning(md(said.sentence), icon=":material/front_hand:")
        else:
            st.info(md(said.sentence), icon=":material/arrow_forward:")
        st.page_link(
            WORKFLOW_PAGE,
            label="Open the workflow",
            icon=":material/timeline:",
            query_params={"workflow": said.workflow_id},
        )


# -- the answer --------------------------------------------------------------------------


def _scalar_schema(schema: Any, value: Any) -> bool:
    """Whether ``schema`` draws ``value`` as a widget that gives it back unchanged."""
    if isinstance(schema, dict):
        for keyword in ("anyOf", "oneOf"):  # "X or null": drawn as X (empty: left out)
            alternatives = schema.get(keyword)
            if isinstance(alternatives, list) and len(alternatives) == 2 and {"type": "null"} in alternatives:
                [other] = [a for a in alternatives if a != {"type": "null"}]
                schema = {
                    **{k: v for k, v in schema.items() if k != keyword},
                    **(other if isinstance(other, dict) else {}),
                }
                break
    if (
        not isinstance(schema, dict)
        or "$ref" in schema
        or "anyOf" in schema
        or "oneOf" in schema
        or "allOf" in schema
    ):
        return False
    if isinstance(schema.get("enum"), list):
        return value is None or value in schema["enum"]
    kind = schema.get("type")
    if isinstance(value, bool):
        return kind == "boolean"
    if isinstance(value, int | float):
        return kind in ("number", "integer") and (kind == "number" or isinstance(value, int))
    if isinstance(value, str):
        return kind == "string" and "format" not in schema
    return value is None and kind in ("string", "number", "integer", "boolean")


def _boolean(schema: dict[str, Any]) -> bool:
    """Whether ``schema`` is a boolean, or a boolean or null."""
    alternatives = schema.get("anyOf") or schema.get("oneOf") or []
    return schema.get("type") == "boolean" or any(
        isinstance(a, dict) and a.get("type") == "boolean" for a in alternatives
    )


def edit_form_schema(view: RequestView) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Edit section's schema and hints: one field per argument of the call about to run.

    Drawn from the tool's input schema (``view.edit_schema``). Text, numbers,
    booleans and choices get their own widgets; anything else (objects,
    lists, dates, alternatives) is a JSON text area, so every field gives its
    value back exactly as it was unless the approver changes it. A budget's
    amount argument is left out: the approved amount above sets it. The
    engine checks the edit against the tool's full input schema.
    """
    assert view.call_now is not None
    arguments: dict[str, Any] = view.call_now["arguments"]
    schema = view.edit_schema if isinstance(view.edit_schema, dict) else {}
    listed = schema.get("properties")
    known: dict[str, Any] = listed if isinstance(listed, dict) else {}
    names = [
        n
        for n in argument_order(view)
        if n in known or schema.get("additionalProperties") is not False or not known
    ]
    required = set(schema.get("required") or [])
    properties: dict[str, Any] = {}
    ui: dict[str, Any] = {}
    for name in names:
        if name == view.amount_argument:
            continue
        found = known.get(name)
        prop: dict[str, Any] = found if isinstance(found, dict) else {}
        value = arguments.get(name)
        words = {k: prop[k] for k in ("title", "description") if isinstance(prop.get(k), str)}
        if _scalar_schema(prop, value):  # not in the call (or null): starts empty
            drawn = {k: v for k, v in prop.items() if k != "default"}
            if value is None and _boolean(prop):
                ui[name] = {"ui:widget": "select"}  # unset stays unset, unlike a checkbox
        else:
            drawn = words  # no type: a JSON text area holding the value as it is
        properties[name] = drawn
        if isinstance(value, str) and (len(value) > LONG_TEXT or "\n" in value):
            ui[name] = {"ui:widget": "textarea"}
    edit: dict[str, Any] = {"type": "object", "properties": properties}
    needed = [n for n in names if n in required and n in properties and n in arguments]
    if needed:
        edit["required"] = needed
    return edit, ui


def call_edit(view: RequestView, drawn: dict[str, Any]) -> dict[str, Any]:
    """What an answer sends about the call: ``{"arguments": {only the changed ones}}``
    (``core.approvals.edits.changed_arguments``, as every channel decides it). An
    argument the Edit section does not draw (a budget's amount) keeps its value; one it
    draws and gets no value back for is a removal, refused (``InvalidResponse``)."""
    assert view.call_now is not None
    shown = edit_form_schema(view)[0]["properties"]
    kept = {n: v for n, v in view.call_now["arguments"].items() if n not in shown}
    return {"arguments": changed_arguments(view, {**kept, **drawn})}


def send_answer(
    engine: ApprovalEngine,
    approval_id: str,
    user: str,
    decision: str,
    data: dict[str, Any] | None,
    comment: str,
    allow: Allow | None = None,
    *,
    issued_for: tuple[int, str | None] | None = None,
) -> list[str]:
    """Record one dashboard answer; why it was refused (each problem on its own), or [].

    ``issued_for``: the level and call digest the form was drawn for; a request that has
    moved on since refuses the answer (``AnswerOutdated``, core.approvals.once) instead of
    counting it as a vote on a call the person never saw."""
    try:
        record_shown_answer(
            engine.db,
            approval_id,
            user,
            decision,
            data,
            comment,
            channel="dashboard",
            shown=issued_for,
            allow_for_days=allow.days if allow else None,
            allow_when=allow.when if allow else None,
        )
    except CountersignError as exc:
        problems = getattr(exc, "problems", None)
        return [str(p) for p in problems] if problems else [str(exc)]
    return []


def _refused(problems: list[str]) -> None:
    lines = "\n".join(f"- {md(p)}" for p in problems)
    st.error(f"Nothing was recorded. The answer was refused:\n{lines}", icon=":material/block:")


def _ask(
    view: RequestView,
    response_schema: dict[str, Any],
    ui_schema: dict[str, Any] | None,
    config: ApprovalConfig,
    allow_hint: str | None = None,
) -> tuple[str | None, Fields, Fields | None, str, Allow | None]:
    """The one answer form; (the button clicked, the answer fields, the Edit fields, comment,
    the standing rule asked for)."""
    with st.form(ANSWER_FORM, enter_to_submit=False):
        st.subheader("Your answer")
        if not view.changes_allowed:  # allow_modify: false: the amount asked, not a lower one
            drawn = dict(response_schema.get("properties") or {})
            drawn.pop("approved_amount", None)
            response_schema = {**response_schema, "properties": drawn}
        answer = schema_fields(response_schema, key="approval.form", ui_schema=ui_schema)
        edit: Fields | None = None
        if view.call_now is not None and view.changes_allowed:
            st.markdown(f"**Edit the call to {md(view.call_now['tool'])}**")
            st.caption(
                "Change what the tool receives, then click Approve with changes: only the "
                "arguments you change are sent, and the tool's own input schema checks them."
                + (" The amount is the approved amount above." if view.amount_argument else "")
            )
            schema, hints = edit_form_schema(view)
            edit = schema_fields(
                schema, key=EDIT_KEY, ui_schema=hints, value=dict(view.call_now["arguments"])
            )
        comment = st.text_area(
            "Comment",
            key="approval.comment",
            placeholder="Why you decide as you do (kept in the audit trail)",
        )
        # "Approve, and allow calls like this for N days", when standing_rules.allow_offer offers it.
        allow = allow_fields(allow_hint) if allow_hint is not None else None
        buttons = st.container(horizontal=True)
        with buttons:
            approve = st.form_submit_button(
                "Run now" if view.notice else "Approve",
                key="approval.approve",
                type="primary",
                icon=":material/check:",
            )
            modify = approve_with_changes_applies(view, config) and st.form_submit_button(
                "Approve with changes", key="approval.modify", icon=":material/edit:"
            )
            reject = st.form_submit_button(
                "Veto" if view.notice else "Reject", key="approval.reject", icon=":material/close:"
            )
    clicked = "reject" if reject else "modify" if modify else "approve" if approve else None
    return clicked, answer, edit, comment or "", allow


def _lowered(view: RequestView, answer: dict[str, Any]) -> bool:
    asked = answer.get("approved_amount")
    return view.amount is not None and isinstance(asked, int | float) and asked < view.amount


def _answer_data(
    view: RequestView, decision: str, answer: Fields, edit: Fields | None
) -> dict[str, Any] | None:
    """The data an Approve or Approve with changes sends; None (with the reason shown) if none."""
    data = answer.checked()
    if decision == "approve":
        if view.call_now is not None and edit is not None:
            try:
                changed = call_edit(view, edit.raw)["arguments"]
            except InvalidResponse as exc:
                _refused(exc.problems)
                return None
            if changed:
                st.error(
                    f"You changed {', '.join(md(n) for n in changed)} in the Edit section. "
                    "Click **Approve with changes** to send your changes, or put them back to "
                    "approve the call as proposed. Nothing was recorded.",
                    icon=":material/edit:",
                )
                return None
        return data
    if data is None:
        return None
    if view.call_now is None or edit is None:
        return data
    drawn = edit.checked()
    if drawn is None:
        return None
    try:
        changes = call_edit(view, drawn)
    except InvalidResponse as exc:
        _refused(exc.problems)
        return None
    if not changes.get("arguments"):
        changes.pop("arguments", None)
        if not changes and not _lowered(view, data):
            st.error(
                "Nothing was changed: edit an argument (or lower the amount), or click "
                "**Approve**. Nothing was recorded.",
                icon=":material/edit:",
            )
            return None
    return {**data, **changes}


def decision_panel(
    db: Database, engine: ApprovalEngine, approval: ApprovalDetail, view: RequestView, user: Any
) -> None:
    """The answer form (Approve / Approve with changes / Reject), or why there is none."""
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.success(flash)
    if approval.status != "pending":
        outcome(db, approval, view, user.email)
        return
    if approval.expires_at is not None and approval.expires_at <= utcnow():
        st.error(
            f"This request expired at {approval.expires_at:%Y-%m-%d %H:%M} UTC; it can no "
            "longer be answered.",
            icon=":material/timer_off:",
        )
        return
    level = approval.level + 1
    mine = [v for v in view.votes if v["approver"] == user.email and v["level"] == level]
    if mine:
        st.info(
            f"You answered **{mine[0]['decision']}** {ago(mine[0]['at'])}; waiting for "
            f"the other approvers ({view.threshold} needed)."
        )
        where_next(db, approval.id, user.email)
        return
    if not user.can_answer:
        st.info("You are signed in as a viewer: you can read this request but not answer it.")
        return
    if not reports.is_asked(db, approval, user.email):
        earlier = [v for v in view.votes if v["approver"] == user.email]
        if earlier:  # a level they answered has passed: say so, and who decides now
            st.info(
                f"You answered **{md(earlier[-1]['decision'])}** at level {earlier[-1]['level']}"
                f"; level {level} now waits for {md(', '.join(approval.approvers))} "
                f"({view.threshold} needed). Approvers: {md(view.chain)}."
            )
            where_next(db, approval.id, user.email)
            return
        st.info(f"You are not among this request's approvers ({md(', '.join(approval.approvers))}).")
        return
    config = ApprovalConfig.model_validate(approval.config)
    allow_hint = standing_rules.allow_offer(db, user.email, approval.tenant, view.call_now)
    # What the form is drawn for (the level, the call's digest): a click reruns the page,
    # which reads the request again, so the answer carries what the last drawing showed.
    stash = f"{DRAWN_FOR}.{approval.id}"
    shown_before = st.session_state.get(stash)
    st.session_state[stash] = (approval.level, (view.call_now or {}).get("digest"))
    clicked, answer, edit, comment, allow = _ask(
        view, approval.response_schema or {"type": "object"}, approval.ui_schema or None, config, allow_hint
    )
    if clicked is None:
        return
    data = None if clicked == "reject" else _answer_data(view, clicked, answer, edit)
    if clicked != "reject" and data is None:
        return
    if shown_before is None:
        _refused([NOT_DRAWN])
        return
    problems = send_answer(
        engine,
        approval.id,
        user.email,
        clicked,
        data,
        comment,
        None if clicked == "reject" else allow,
        issued_for=shown_before,
    )
    if problems:
        _refused(problems)
        return
    # What was recorded (a plain Approve of a lowered amount is a change), read back.
    _, recorded = approval_page(engine, approval.id, tenant=user.tenant)
    st.session_state[FLASH] = answer_confirmation(recorded, user.email, level) + (
        f" Calls like this are allowed for {allow.days:g} days (Policies)."
        if allow and clicked != "reject"
        else ""
    )
    st.rerun()
