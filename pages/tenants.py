"""Tenants: organisations, their flows, secrets and model settings (platform admins)."""

from __future__ import annotations

import streamlit as st

from components import tenants as widgets
from components.auth import signed_in
from components.services import get_services
from components.text import md
from core.identity.permissions import Action, allowed
from core.tenants import registry as tenants

user = signed_in()
db = get_services().db

st.title("Tenants")
if not allowed(db, user.email, Action.TENANTS_MANAGE):  # platform admins (core.identity.permissions)
    st.info("Only platform admins (admins without a tenant) manage tenants.")
    st.stop()
widgets.notice()
rows = tenants.list_tenants(db)
widgets.tenants_table(rows)
widgets.create_form(db, user.email)

if rows:
    if widgets.SELECT_NEXT in st.session_state:
        st.session_state["tenants.choice"] = st.session_state.pop(widgets.SELECT_NEXT)
    slugs = [t.slug for t in rows]
    if st.session_state.get("tenants.choice") not in slugs:
        st.session_state.pop("tenants.choice", None)
    slug = st.selectbox("Tenant", slugs, key="tenants.choice")
    if slug:
        st.header(md(next(t.name for t in rows if t.slug == slug) or slug))
        flows_tab, secrets_tab, model_tab, delete_tab = st.tabs(
            ["Flows", "Secrets", "Model settings", "Delete"]
        )
        with flows_tab:
            widgets.flows_section(db, slug, user.email)
        with secrets_tab:
            widgets.secrets_section(db, slug, user.email)
        with model_tab:
            widgets.model_section(db, slug, user.email)
        with delete_tab:
            widgets.delete_section(db, slug, user.email)
