"""Policies: standing rules (list, create, edit, revoke) and out of office.

Rules are listed to everyone who may read the audit trail; creating, editing
and revoking needs ``policies:manage`` (core.approvals.standing_rules checks it again).
"""

from __future__ import annotations

import streamlit as st

from components.auth import signed_in
from components.policies import (
    create_rule_form,
    edit_rule_form,
    notice,
    out_of_office_form,
    rules_table,
)
from components.services import get_services
from core.approvals import standing_rules
from core.identity.permissions import Action, actions_for

user = signed_in()
db = get_services().db
can = actions_for(db, user.email)

st.title("Policies")
notice()

st.header("Standing rules")
st.caption(
    "A rule releases later calls of its tool that satisfy its condition, in its tenant "
    "(and workflow), without asking, until it expires. Every call it releases names it "
    "in the audit trail. Approvers with policies:manage create one with **Approve, and "
    "allow calls like this** on a request, or here."
)
show_ended = st.toggle("Show revoked and expired rules", key="policies.show_ended")
if Action.AUDIT_READ in can:
    rows = standing_rules.list_rules(db, user.email, include_ended=show_ended)
    if rows:
        rules_table(rows)
    else:
        st.info("No standing rules: every call that needs approval asks a person.")
    if Action.POLICIES_MANAGE in can:
        left, right = st.columns(2)
        with left:
            create_rule_form(db, user.email)
        with right:
            edit_rule_form(db, user.email, rows)

if Action.APPROVALS_REASSIGN in can:
    st.header("Out of office")
    st.caption("While you are away, requests addressed to you go to your delegate (audited).")
    out_of_office_form(db, user.email, key="policies.ooo")
