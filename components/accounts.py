"""Settings: accounts and their state; an admin disables or enables one here.

Only drawn for ``users:manage`` (pages/settings.py); core.identity.account_state checks
it again, with the tenant: a tenant's admin lists and changes only that
tenant's accounts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from components.feedback import core_errors
from core.identity.account_state import disable_user, enable_user
from core.identity.users import list_users

if TYPE_CHECKING:
    from components.auth import SignedIn
    from core.store.db import Database

DONE = "accounts.done"  # what the last change did: shown once after the rerun


def accounts_section(db: Database, user: SignedIn) -> None:
    done = st.session_state.pop(DONE, None)
    if done:
        st.success(done)
    accounts = [u for u in list_users(db) if user.tenant is None or u.tenant == user.tenant]
    if not accounts:
        st.caption("No accounts yet.")
        return
    st.dataframe(
        {
            "email": [u.email for u in accounts],
            "role": [u.role for u in accounts],
            "tenant": [u.tenant or "-" for u in accounts],
            "state": [
                f"disabled since {u.disabled_at:%Y-%m-%d %H:%M} UTC" if u.disabled_at else "active"
                for u in accounts
            ],
        },
        hide_index=True,
        key="users.table",
    )
    states = {u.email: u.disabled_at is not None for u in accounts}
    with st.form("users.state.form", border=False):
        chosen = st.selectbox(
            "Account",
            list(states),
            key="users.state.pick",
            format_func=lambda e: f"{e} ({'disabled' if states[e] else 'active'})",
        )
        left, right = st.columns(2)
        disable = left.form_submit_button("Disable", key="users.disable.submit")
        enable = right.form_submit_button("Enable", key="users.enable.submit")
    if chosen is None or not (disable or enable):
        return
    with core_errors():
        if disable:
            disable_user(db, chosen, actor=user.email)
            st.session_state[DONE] = (
                f"Disabled {chosen}: their sessions ended; sign-in, API "
                "tokens, email links and Slack clicks are refused."
            )
        else:
            enable_user(db, chosen, actor=user.email)
            st.session_state[DONE] = f"Enabled {chosen}: they can sign in again."
        st.rerun()
