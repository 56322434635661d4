"""The Teams section of the Agents page: list, start, create, edit, delete.

Everyone reads the teams; approvers and admins start one (an ordinary
workflow, opened on the Workflow page); admins create, edit and delete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from components.feedback import show_error
from components.nav import WORKFLOW_PAGE
from components.text import md
from core.agents import profiles, teams
from core.base.errors import CountersignError
from core.identity.permissions import Action, actions_for

if TYPE_CHECKING:
    from components.auth import SignedIn
    from core.store.db import Database

NEW = "+ New team"
NOTICE = "teams.notice"
STARTED = "teams.started"
SELECT_NEXT = "teams.select_next"


def _pipeline(team: dict[str, Any]) -> str:
    gates = set(team["settings"].get("approve_before") or [])
    return " → ".join(("[approval] " if member in gates else "") + member for member in team["members"])


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def teams_section(db: Database, user: SignedIn) -> None:
    st.caption(
        "A team runs agent profiles in order: the first works on the task you give, each "
        "next one on the previous one's answer. [approval] marks a member a person "
        "approves before. A started team is an ordinary workflow on the Workflows page."
    )
    if NOTICE in st.session_state:
        st.success(md(st.session_state.pop(NOTICE)))  # it names the team
    rows = [teams.team_dict(t) for t in teams.list_teams(db)]
    if rows:
        st.dataframe(
            {
                "name": [r["name"] for r in rows],
                "members": [_pipeline(r) for r in rows],
                "description": [r["description"] for r in rows],
            },
            hide_index=True,
            key="teams.table",
        )
    else:
        st.info("No agent teams yet.")
    can = actions_for(db, user.email)
    if Action.WORKFLOWS_START in can and rows:
        _start_form(db, user, [r["name"] for r in rows])
    if Action.AGENTS_MANAGE in can:
        _editor(db, user, rows)
    else:
        st.caption("Only platform admins can create, edit or delete agent teams.")


def _start_form(db: Database, user: SignedIn, names: list[str]) -> None:
    st.header("Start a team")
    started = st.session_state.pop(STARTED, None)
    if started:
        st.success(f"Started **{md(started['name'])}**.", icon=":material/play_circle:")
        st.page_link(
            WORKFLOW_PAGE,
            label="Open its workflow",
            icon=":material/timeline:",
            query_params={"workflow": started["id"]},
        )
    with st.form("teams.start"):
        name = st.selectbox("Team", names, key="teams.start.team")
        task = st.text_area("Task", key="teams.start.task", placeholder="What the first member works on")
        submitted = st.form_submit_button("Start team", type="primary", key="teams.start.submit")
    if not submitted or name is None:
        return
    try:
        workflow = teams.start_team(db, name, task, user.email)
    except CountersignError as exc:
        show_error(exc)
        return
    st.session_state[STARTED] = {"id": workflow.id, "name": workflow.name}
    st.rerun()


def _editor(db: Database, user: SignedIn, rows: list[dict[str, Any]]) -> None:
    if SELECT_NEXT in st.session_state:
        st.session_state["teams.choice"] = st.session_state.pop(SELECT_NEXT)
    choice = st.selectbox("Edit team", [NEW, *[r["name"] for r in rows]], key="teams.choice")
    current: dict[str, Any] = next((r for r in rows if r["name"] == choice), {})
    prefix = "teams.new" if choice == NEW else f"teams.edit.{choice}"
    available = [p.name for p in profiles.list_profiles(db)]
    st.header("New agent team" if choice == NEW else f"Edit {md(choice)}")
    name = st.text_input("Name", key=f"{prefix}.name") if choice == NEW else choice
    description = st.text_input(
        "Description", value=current.get("description", ""), key=f"{prefix}.description"
    )
    members = st.multiselect(
        "Members, in the order they run",
        available,
        default=[m for m in current.get("members", []) if m in available],
        key=f"{prefix}.members",
        help="Pick them in pipeline order: the first works on the task.",
    )
    settings = dict(current.get("settings") or {})
    gates = st.multiselect(
        "A person approves before",
        members,
        default=[m for m in settings.get("approve_before", []) if m in members],
        key=f"{prefix}.approve_before",
    )
    approval = dict(settings.get("approval") or {})
    approvers = st.text_input(
        "Who approves (emails or groups, comma-separated; default admins)",
        value=", ".join(approval.get("requested_from") or []),
        key=f"{prefix}.approvers",
    )
    save, delete = st.columns(2)
    if save.button("Create team" if choice == NEW else "Save team", type="primary", key=f"{prefix}.save"):
        if _names(approvers):
            approval["requested_from"] = _names(approvers)
        else:
            approval.pop("requested_from", None)
        fields = {
            "description": description,
            "members": members,
            "settings": {**settings, "approve_before": gates, "approval": approval},
        }
        try:
            if choice == NEW:
                teams.create_team(db, {"name": name.strip(), **fields}, user.email)
                st.session_state[NOTICE] = f"Agent team {name.strip()} created."
            else:
                teams.update_team(db, choice, fields, user.email)
                st.session_state[NOTICE] = f"Agent team {choice} saved."
        except CountersignError as exc:
            show_error(exc)
        else:
            st.session_state[SELECT_NEXT] = name.strip()
            st.rerun()
    if choice != NEW and delete.button(f"Delete {choice}", key=f"{prefix}.delete"):
        try:
            teams.delete_team(db, choice, user.email)
        except CountersignError as exc:
            show_error(exc)
        else:
            st.session_state[NOTICE] = f"Agent team {choice} deleted."
            st.session_state[SELECT_NEXT] = NEW
            st.rerun()
