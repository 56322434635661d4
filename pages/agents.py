"""Agents: the agent profiles task steps use by name (``agent: <name>``), and
teams of them (components/teams.py).

Everyone signed in reads them; only admins create, edit and delete.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from components.auth import signed_in
from components.services import get_services
from components.teams import teams_section
from components.text import md, md_lines
from core.agents import profiles
from core.base.errors import CountersignError
from core.definitions.agents import held_label
from core.identity.permissions import Action, allowed

NEW = "+ New profile"
ENVIRONMENT = "(from the environment)"
NOTICE = "agents.notice"
SELECT_NEXT = "agents.select_next"

user = signed_in()
db = get_services().db

st.title("Agents")
if (
    st.radio(
        "Show", ["Profiles", "Teams"], horizontal=True, key="agents.section", label_visibility="collapsed"
    )
    == "Teams"
):
    teams_section(db, user)
    st.stop()
st.caption(
    "Agent profiles: a task step names one with `agent: <name>`. A profile in use by a "
    "workflow that is not completed, cancelled or failed cannot be deleted."
)
if NOTICE in st.session_state:
    st.success(md(st.session_state.pop(NOTICE)))  # it names the profile

rows = [profiles.profile_dict(p) for p in profiles.list_profiles(db)]
if rows:
    st.dataframe(
        {
            "name": [r["name"] for r in rows],
            "role": [r["role"] for r in rows],
            "type": [r["agent_type"] for r in rows],
            "model": [f"{r['model_provider'] or '-'} / {r['model_id'] or '-'}" for r in rows],
            "tools": [", ".join(r["tools"]) for r in rows],
            "held tools": [", ".join(held_label(h) for h in r["held_tools"]) for r in rows],
            "max steps": [r["max_steps"] for r in rows],
        },
        hide_index=True,
        key="agents.table",
    )
else:
    st.info("No agent profiles yet.")

if not allowed(db, user.email, Action.AGENTS_MANAGE):
    # Profiles are shared by every tenant: agents:manage is a platform admin's (core.identity.permissions).
    st.caption("Only platform admins can create, edit or delete agent profiles.")
    st.stop()

if SELECT_NEXT in st.session_state:
    st.session_state["agents.choice"] = st.session_state.pop(SELECT_NEXT)
names = [r["name"] for r in rows]
choice = st.selectbox("Profile", [NEW, *names], key="agents.choice")
current: dict[str, Any] = next((r for r in rows if r["name"] == choice), {})
prefix = "agents.new" if choice == NEW else f"agents.edit.{choice}"


def names_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


st.header("New agent profile" if choice == NEW else f"Edit {md(choice)}")
# One form: every field typed and Create or Save clicked at once arrive together (a text
# box outside a form reruns the page as it loses focus, which can swallow the click).
with st.form(f"{prefix}.form", border=False, enter_to_submit=False):
    name = st.text_input("Name", key=f"{prefix}.name") if choice == NEW else choice
    role = st.text_input("Role", value=current.get("role", ""), key=f"{prefix}.role")
    instructions = st.text_area(
        "Instructions", value=current.get("instructions", ""), key=f"{prefix}.instructions"
    )
    left, right = st.columns(2)
    types = list(profiles.AGENT_TYPES)
    agent_type = left.selectbox(
        "Agent type",
        types,
        index=types.index(current.get("agent_type", types[0])),
        key=f"{prefix}.agent_type",
    )
    max_steps = right.number_input(
        "Max steps",
        min_value=1,
        max_value=200,
        value=int(current.get("max_steps", 10)),
        key=f"{prefix}.max_steps",
    )
    providers = [ENVIRONMENT, *profiles.PROVIDERS]
    provider = left.selectbox(
        "Model provider",
        providers,
        index=providers.index(current.get("model_provider") or ENVIRONMENT),
        key=f"{prefix}.provider",
    )
    model_id = right.text_input(
        "Model id",
        value=current.get("model_id") or "",
        placeholder="from the environment",
        key=f"{prefix}.model_id",
    )
    tools = st.text_input(
        "Tools (comma-separated)", value=", ".join(current.get("tools", [])), key=f"{prefix}.tools"
    )
    # A held tool's gate ({name, when}) is kept while its name stays listed; gates are
    # written in YAML or with the CLI (docs/policy.md).
    held_gates = {h["name"]: h for h in current.get("held_tools", []) if isinstance(h, dict)}
    held_tools = st.text_input(
        "Held tools: each call waits for a person (comma-separated)",
        value=", ".join(h["name"] if isinstance(h, dict) else h for h in current.get("held_tools", [])),
        key=f"{prefix}.held_tools",
        help="A tool with a gate keeps it: "
        + (", ".join(held_label(h) for h in held_gates.values()) or "none"),
    )
    settings_text = st.text_area(
        "Other settings (JSON: model api_base / api_key_env / options, approval, "
        "authorized_imports, executor)",
        value=json.dumps(current.get("settings") or {}, indent=2),
        key=f"{prefix}.settings",
    )
    save, delete = st.columns(2)
    saved = save.form_submit_button(
        "Create" if choice == NEW else "Save", type="primary", key=f"{prefix}.save"
    )
    deleted = choice != NEW and delete.form_submit_button(f"Delete {md(choice)}", key=f"{prefix}.delete")

if saved:
    try:
        settings = json.loads(settings_text or "{}")
    except json.JSONDecodeError as exc:
        st.error(f"Other settings are not valid JSON: {exc.msg} (line {exc.lineno}).")
    else:
        fields = {
            "role": role,
            "instructions": instructions,
            "agent_type": agent_type,
            "model_provider": None if provider == ENVIRONMENT else provider,
            "model_id": model_id.strip() or None,
            "tools": names_list(tools),
            "held_tools": [held_gates.get(n, n) for n in names_list(held_tools)],
            "max_steps": int(max_steps),
            "settings": settings,
        }
        try:
            if choice == NEW:
                profiles.create_profile(db, {"name": name.strip(), **fields}, user.email)
                st.session_state[NOTICE] = f"Agent profile {name.strip()} created."
            else:
                profiles.update_profile(db, choice, fields, user.email)
                st.session_state[NOTICE] = f"Agent profile {choice} saved."
        except CountersignError as exc:
            st.error(md_lines(exc))
        else:
            st.session_state[SELECT_NEXT] = name.strip()
            st.rerun()

if deleted:
    try:
        profiles.delete_profile(db, choice, user.email)
    except CountersignError as exc:
        st.error(md_lines(exc))
    else:
        st.session_state[NOTICE] = f"Agent profile {choice} deleted."
        st.session_state[SELECT_NEXT] = NEW
        st.rerun()
