"""Settings: who may do what (roles and actions), and API tokens: listed with
their scopes and expiry, made (shown once) and revoked.

Making and revoking tokens is ``users:manage`` (core.identity.permissions); core
checks it again and refuses a token with more than its user's role.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from components.feedback import core_errors
from core.identity.api_tokens import create_token, list_tokens, parse_lifetime, revoke_token, token_dict
from core.identity.permissions import ROLES, role_table, token_actions
from core.identity.users import list_users

if TYPE_CHECKING:
    from components.auth import SignedIn
    from core.store.db import Database

MADE = "tokens.made"  # the token just made: shown once, then dropped
LIFETIMES = {"30 days": "30d", "90 days": "90d", "1 year": "365d", "never": None}


def roles_table() -> None:
    """The role × action table core.identity.permissions enforces."""
    rows = role_table()
    st.dataframe(
        {"action": [r[0] for r in rows], **{role: [r[i + 1] for r in rows] for i, role in enumerate(ROLES)}},
        hide_index=True,
        key="permissions.roles",
    )


def tokens_section(db: Database, user: SignedIn) -> None:
    made = st.session_state.pop(MADE, None)
    if made:
        st.success(f"Token **{made['name']}** for {made['user']}: copy it now, it is not shown again.")
        st.code(made["token"], language=None)
    tokens = [token_dict(t) for t in list_tokens(db, tenant=user.tenant)]
    if tokens:
        st.dataframe(
            {
                "id": [t["id"] for t in tokens],
                "name": [t["name"] for t in tokens],
                "user": [t["user"] for t in tokens],
                "scopes": [", ".join(t["scopes"]) for t in tokens],
                "expires": [t["expires_at"] or "never" for t in tokens],
                "last used": [t["last_used_at"] or "-" for t in tokens],
                "state": [t["state"] for t in tokens],
            },
            hide_index=True,
            key="tokens.table",
        )
    else:
        st.caption("No API tokens yet.")
    live = [t for t in tokens if t["state"] == "live"]
    if live:
        with st.form("tokens.revoke.form", border=False):
            chosen = st.selectbox(
                "Token",
                [t["id"] for t in live],
                key="tokens.revoke.pick",
                format_func=lambda i: next(
                    f"#{t['id']} {t['name']} ({t['user']})" for t in live if t["id"] == i
                ),
            )
            if st.form_submit_button("Revoke", key="tokens.revoke.submit") and chosen is not None:
                with core_errors():
                    row = revoke_token(db, int(chosen), user.email)
                    st.success(f"Revoked token #{row.id} {row.name}.")
                    st.rerun()
    _create_form(db, user)


def _create_form(db: Database, user: SignedIn) -> None:
    accounts = [u for u in list_users(db) if user.tenant is None or u.tenant == user.tenant]
    if not accounts:
        return
    roles = {u.email: u.role for u in accounts}
    st.subheader("New API token")
    owner = st.selectbox(
        "Acts as", list(roles), key="tokens.new.user", format_func=lambda e: f"{e} ({roles[e]})"
    )
    most = sorted(token_actions(roles.get(owner or "", "")))
    with st.form("tokens.new.form"):
        name = st.text_input("Name", key="tokens.new.name", placeholder="What or who uses it")
        scopes = st.multiselect(
            "Scopes",
            most,
            default=most,
            key=f"tokens.new.scopes.{owner}",
            help="What the token may do: at most what its user's role allows.",
        )
        lifetime = st.selectbox("Expires after", list(LIFETIMES), key="tokens.new.lifetime")
        submitted = st.form_submit_button("Create token", type="primary", key="tokens.new.submit")
    if not submitted or owner is None:
        return
    with core_errors():
        chosen = LIFETIMES[lifetime or "never"]
        row, token = create_token(
            db,
            owner,
            name,
            scopes=scopes,
            expires_in=parse_lifetime(chosen) if chosen else None,
            actor=user.email,
        )
        st.session_state[MADE] = {"name": row.name, "user": row.user_email, "token": token}
        st.rerun()
