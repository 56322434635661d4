"""Tenants page widgets: the list, a new tenant, and one tenant's flows,
secrets and model settings. Every change goes through ``core.tenants.registry``,
which validates it and refuses anyone but a platform admin.

A secret is typed into a password input and is never drawn back: the
secrets list shows names and a mask, and the input is cleared after saving.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from components.feedback import show_error
from core.base.errors import CountersignError, InvalidTenantSettings
from core.engine.tools import default_registry
from core.tenants import registry as tenants

if TYPE_CHECKING:
    from core.store.db import Database

NOTICE = "tenants.notice"
SELECT_NEXT = "tenants.select_next"
PROVIDERS = ("(platform)", "openai", "inference_client", "litellm", "transformers", "python", "rehearsal")


def notice() -> None:
    if NOTICE in st.session_state:
        st.success(st.session_state.pop(NOTICE))


def _done(message: str, select: str | None = None) -> None:
    st.session_state[NOTICE] = message
    if select is not None:
        st.session_state[SELECT_NEXT] = select
    st.rerun()


def _json_object(raw: str, field: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError as exc:
        raise InvalidTenantSettings([f"{field}: not valid JSON ({exc})"], what="input") from None
    if not isinstance(value, dict):
        raise InvalidTenantSettings([f"{field}: must be a JSON object"], what="input")
    return value


def tenants_table(rows: list[Any]) -> None:
    if not rows:
        st.info("No tenants yet: every user and workflow belongs to the platform.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "slug": t.slug,
                    "name": t.name,
                    "created": t.created_at,
                    "model": (t.settings or {}).get("model") or "platform",
                }
                for t in rows
            ]
        ),
        hide_index=True,
        key="tenants.table",
    )


def create_form(db: Database, actor: str) -> None:
    with st.form("tenants.create", clear_on_submit=True):
        st.subheader("New tenant")
        slug = st.text_input("Slug", key="tenants.create.slug", placeholder="acme")
        name = st.text_input("Name", key="tenants.create.name", placeholder="Acme Corp")
        submitted = st.form_submit_button("Create tenant", key="tenants.create.submit", type="primary")
    if submitted:
        try:
            row = tenants.create_tenant(db, slug, name=name, actor=actor)
        except CountersignError as exc:
            show_error(exc)
            return
        _done(f"Tenant {row.slug} created.", select=row.slug)


def flows_section(db: Database, slug: str, actor: str) -> None:
    st.subheader("Flows")
    flows = [tenants.flow_dict(f) for f in tenants.list_flows(db, slug)]
    if flows:
        st.dataframe(
            pd.DataFrame(
                [
                    {**f, "tools": ", ".join(f["tools"]), "parameters": json.dumps(f["parameters"])}
                    for f in flows
                ]
            ),
            hide_index=True,
            key=f"tenants.{slug}.flows",
        )
    else:
        st.caption("No flows yet.")
    with st.form(f"tenants.{slug}.flow", clear_on_submit=False):
        name = st.text_input("Flow name", key=f"tenants.{slug}.flow.name", placeholder="food_ordering")
        agent_type = st.selectbox("Agent type", tenants.AGENT_TYPES, key=f"tenants.{slug}.flow.agent_type")
        tools = st.multiselect("Tools", sorted(default_registry.names()), key=f"tenants.{slug}.flow.tools")
        parameters = st.text_area(
            "Parameters (JSON object)", value="{}", key=f"tenants.{slug}.flow.parameters"
        )
        description = st.text_input("Description", key=f"tenants.{slug}.flow.description")
        submitted = st.form_submit_button("Save flow", key=f"tenants.{slug}.flow.submit")
    if submitted:
        try:
            row = tenants.save_flow(
                db,
                slug,
                {
                    "name": name,
                    "agent_type": agent_type,
                    "tools": tools,
                    "description": description,
                    "parameters": _json_object(parameters, "parameters"),
                },
                actor=actor,
            )
        except CountersignError as exc:
            show_error(exc)
            return
        _done(f"Flow {row.name} saved.")
    if flows:
        _removal(
            "Remove a flow",
            [f["name"] for f in flows],
            f"tenants.{slug}.flow.remove",
            "Remove",
            lambda name: tenants.remove_flow(db, slug, name, actor=actor),
            "Flow {} removed.",
        )


def _removal(
    label: str, names: list[str], key: str, button: str, remove: Callable[[str], object], done: str
) -> None:
    """A choice of one of ``names`` and a button that removes it (``key`` and ``key``_choice)."""
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    doomed = left.selectbox(label, names, key=f"{key}_choice")
    if right.button(button, key=key) and doomed:
        try:
            remove(doomed)
        except CountersignError as exc:
            show_error(exc)
            return
        _done(done.format(doomed))


def secrets_section(db: Database, slug: str, actor: str) -> None:
    st.subheader("Secrets")
    st.caption(
        f"Encrypted with {tenants.SECRETS_KEY_ENV}; never shown again once saved. The "
        f"model's key is the secret `{tenants.MODEL_API_KEY_SECRET}`."
    )
    listed = tenants.list_tenant_secrets(db, slug)
    if listed:
        st.dataframe(
            pd.DataFrame([{"name": s.name, "value": s.masked, "updated": s.updated_at} for s in listed]),
            hide_index=True,
            key=f"tenants.{slug}.secrets",
        )
    with st.form(f"tenants.{slug}.secret", clear_on_submit=True):
        name = st.text_input(
            "Secret name", value=tenants.MODEL_API_KEY_SECRET, key=f"tenants.{slug}.secret.name"
        )
        value = st.text_input(
            "Value", type="password", key=f"tenants.{slug}.secret.value", autocomplete="new-password"
        )
        submitted = st.form_submit_button("Save secret", key=f"tenants.{slug}.secret.submit")
    if submitted:
        try:
            info = tenants.set_tenant_secret(db, slug, name, value, actor=actor)
        except CountersignError as exc:
            show_error(exc)
            return
        st.session_state.pop(f"tenants.{slug}.secret.value", None)  # never drawn back
        _done(f"Secret {info.name} saved (encrypted).")
    if listed:
        _removal(
            "Delete a secret",
            [s.name for s in listed],
            f"tenants.{slug}.secret.delete",
            "Delete",
            lambda name: tenants.delete_tenant_secret(db, slug, name, actor=actor),
            "Secret {} deleted.",
        )


def model_section(db: Database, slug: str, actor: str) -> None:
    st.subheader("Model settings")
    st.caption(
        "Layered over the platform's (environment) settings; each user may then choose "
        "another model id and options."
    )
    current = dict((tenants.get_tenant(db, slug).settings or {}).get("model") or {})
    with st.form(f"tenants.{slug}.model"):
        provider = st.selectbox(
            "Provider",
            PROVIDERS,
            key=f"tenants.{slug}.model.provider",
            index=PROVIDERS.index(current.get("provider") or PROVIDERS[0]),
        )
        model_id = st.text_input(
            "Model id",
            value=current.get("model_id") or "",
            key=f"tenants.{slug}.model.model_id",
            placeholder="platform's",
        )
        api_base = st.text_input(
            "API base",
            value=current.get("api_base") or "",
            key=f"tenants.{slug}.model.api_base",
            placeholder="platform's",
        )
        options = st.text_area(
            "Options (JSON object)",
            value=json.dumps(current.get("options") or {}),
            key=f"tenants.{slug}.model.options",
        )
        submitted = st.form_submit_button("Save model settings", key=f"tenants.{slug}.model.submit")
    if submitted:
        settings: dict[str, Any] = {
            "model_id": model_id.strip() or None,
            "api_base": api_base.strip() or None,
            "provider": None if provider == PROVIDERS[0] else provider,
        }
        try:
            settings["options"] = _json_object(options, "options")
            tenants.set_tenant_model_settings(
                db, slug, {k: v for k, v in settings.items() if v is not None}, actor=actor
            )
        except CountersignError as exc:
            show_error(exc)
            return
        _done("Model settings saved.")


def delete_section(db: Database, slug: str, actor: str) -> None:
    usage = tenants.tenant_usage(db, slug)
    st.caption("Belongs to it: " + ", ".join(f"{n} {k}" for k, n in usage.items()))
    if st.button(f"Delete tenant {slug}", key=f"tenants.{slug}.delete", type="secondary"):
        try:
            tenants.delete_tenant(db, slug, actor=actor)
        except CountersignError as exc:
            show_error(exc)
            return
        _done(f"Tenant {slug} deleted.")
