"""Approval-policy widgets: "allow calls like this" in the answer form, the standing
rules table and its forms, and the out-of-office form.

Every change goes through ``core.approvals.standing_rules`` or ``core.approvals.delegation``, which
check permissions and validate; these widgets only draw and report. Values an
agent wrote (a rule's condition comes from a call's arguments) are shown as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from components.feedback import show_error
from components.text import md
from core.approvals import delegation, standing_rules
from core.base.errors import CountersignError
from core.identity.addresses import check_address

if TYPE_CHECKING:
    from core.store.db import Database

NOTICE = "policies.notice"
DEFAULT_DAYS = 7


@dataclass(frozen=True)
class Allow:
    """What an approver asked with "Approve, and allow calls like this"."""

    days: float
    when: str | None


def notice() -> None:
    if NOTICE in st.session_state:
        st.success(st.session_state.pop(NOTICE))


def _done(message: str) -> None:
    st.session_state[NOTICE] = message
    st.rerun()


def allow_fields(hint: str) -> Allow | None:
    """Inside the answer form: the "allow calls like this for N days" option; ``hint`` is
    what "like this" means by default (``standing_rules.allow_offer``). None unless ticked."""
    st.markdown("**Standing rule**")
    allow = st.checkbox("Approve, and allow calls like this for the days below", key="approval.allow")
    days = st.number_input(
        "Days",
        min_value=1,
        max_value=standing_rules.MAX_DAYS,
        value=DEFAULT_DAYS,
        step=1,
        key="approval.allow_days",
    )
    when = st.text_input(
        "Calls like this: a condition on the arguments",
        key="approval.allow_when",
        placeholder=hint,
        help=f"Empty: {standing_rules.DEFAULT_CONDITION_WORDS}. "
        "E.g. args.amount <= 200 or args.to in ['a@x.com', 'b@x.com'].",
    )
    return Allow(float(days), when.strip() or None) if allow else None


def rules_table(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(
        [
            {
                "id": r["id"],
                "tool": r["tool"],
                "condition": r["condition"],
                "workflow": r["workflow_name"] or "(any)",
                "tenant": r["tenant"] or "(platform)",
                "state": r["state"],
                "expires": r["expires_at"][:16].replace("T", " "),
                "uses": r["uses"],
                "created by": r["created_by"],
            }
            for r in rows
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="policies.rules.table")


def create_rule_form(db: Database, actor: str) -> None:
    with st.form("policies.create", enter_to_submit=False, border=True, clear_on_submit=True):
        st.subheader("New rule")
        tool = st.text_input("Tool", key="policies.create.tool", placeholder="pay")
        condition = st.text_input(
            "Condition", key="policies.create.condition", placeholder="args.amount <= 200"
        )
        workflow = st.text_input("Workflow name (empty: any workflow)", key="policies.create.workflow")
        days = st.number_input(
            "Days",
            min_value=1,
            max_value=standing_rules.MAX_DAYS,
            value=DEFAULT_DAYS,
            step=1,
            key="policies.create.days",
        )
        note = st.text_input("Note", key="policies.create.note")
        submitted = st.form_submit_button("Create rule", type="primary", key="policies.create.submit")
    if submitted:
        try:
            rule = standing_rules.create_rule(
                db,
                actor,
                tool=tool,
                condition=condition,
                days=float(days),
                workflow_name=workflow or None,
                note=note,
            )
        except CountersignError as exc:
            show_error(exc)
            return
        _done(f"Rule {rule['id']} created: {md(rule['tool'])} when {md(rule['condition'])}.")


def edit_rule_form(db: Database, actor: str, rows: list[dict[str, Any]]) -> None:
    live = [r for r in rows if r["state"] == "active"]
    if not live:
        return
    with st.form("policies.edit", enter_to_submit=False, border=True):
        st.subheader("Edit or revoke a rule")
        chosen = st.selectbox(
            "Rule",
            [r["id"] for r in live],
            key="policies.edit.rule",
            format_func=lambda i: next(
                f"{r['id']}: {r['tool']} when {r['condition']}" for r in live if r["id"] == i
            ),
        )
        condition = st.text_input("New condition (empty: unchanged)", key="policies.edit.condition")
        days = st.number_input(
            "New expiry in days from now (0: unchanged)",
            min_value=0,
            max_value=standing_rules.MAX_DAYS,
            value=0,
            step=1,
            key="policies.edit.days",
        )
        buttons = st.container(horizontal=True)
        with buttons:
            save = st.form_submit_button("Save", key="policies.edit.save")
            revoke = st.form_submit_button("Revoke", key="policies.edit.revoke", icon=":material/block:")
    if not (save or revoke) or chosen is None:
        return
    try:
        if revoke:
            standing_rules.revoke_rule(db, actor, int(chosen))
            message = f"Rule {chosen} revoked: later calls are asked about again."
        else:
            standing_rules.update_rule(
                db, actor, int(chosen), condition=condition or None, days=float(days) if days else None
            )
            message = f"Rule {chosen} saved."
    except CountersignError as exc:
        show_error(exc)
        return
    _done(message)


def out_of_office_form(db: Database, actor: str, *, any_person: bool = False, key: str = "ooo") -> None:
    """Set or clear "out of office until <date>, delegate to <person>": the signed-in
    person's own, or (``any_person``, for admins) anyone's."""
    current = delegation.out_of_office_of(db, actor)
    if current:
        st.info(
            f"Out of office until {current['until'][:16].replace('T', ' ')} UTC; requests "
            f"go to {md(current['delegate'])}.",
            icon=":material/flight_takeoff:",
        )
    with st.form(f"{key}.form", enter_to_submit=False, border=True):
        target = st.text_input("Person", value=actor, key=f"{key}.person", disabled=not any_person)
        until = st.date_input(
            "Out of office until (the end of that day, UTC)",
            value=datetime.now(UTC).date() + timedelta(days=7),
            key=f"{key}.until",
        )
        delegate = st.text_input(
            "Delegate to",
            value=current["delegate"] if current else "",
            key=f"{key}.delegate",
            placeholder="deputy@example.com",
        )
        buttons = st.container(horizontal=True)
        with buttons:
            save = st.form_submit_button("Set out of office", type="primary", key=f"{key}.save")
            clear = st.form_submit_button("I am back", key=f"{key}.clear")
    if not (save or clear):
        return
    person_email = target.strip().lower() if any_person else actor
    try:
        if clear:
            delegation.clear_out_of_office(db, actor, person_email)
            message = f"{md(person_email)} is back: requests reach them again."
        else:
            end = datetime.combine(until, time(23, 59), tzinfo=UTC) if not isinstance(until, tuple) else None
            if end is None:
                st.error("Choose one date.")
                return
            # Through the one check every address goes through (core.identity.addresses).
            delegate = check_address(delegate, "delegate")
            person_email = check_address(person_email, "person")
            delegation.set_out_of_office(db, actor, person=person_email, until=end, delegate=delegate)
            message = (
                f"{md(person_email)} is out of office until {end:%Y-%m-%d}; requests go "
                f"to {md(delegate.strip().lower())}."
            )
    except CountersignError as exc:
        show_error(exc)
        return
    _done(message)


__all__ = [
    "Allow",
    "allow_fields",
    "create_rule_form",
    "edit_rule_form",
    "notice",
    "out_of_office_form",
    "rules_table",
]
