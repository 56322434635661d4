"""Countersign's dashboard: `streamlit run app.py`.

Sets up the shared services once per server process (database migrated,
demo loaded into an empty database, one background runner unless
RUNNER=external), signs the visitor in, and builds the navigation by role.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from components import auth
from components.services import get_services

# Absolute, so the app also runs when started from another script (tests).
HERE = Path(__file__).resolve().parent
ALL_ROLES = frozenset({"viewer", "approver", "admin"})


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    url_path: str
    roles: frozenset[str] = ALL_ROLES
    visible: bool = True


PAGES = (
    PageSpec("pages/inbox.py", "Inbox", ":material/inbox:", "inbox"),
    PageSpec("pages/approval.py", "Approval", ":material/approval:", "approval", visible=False),
    PageSpec("pages/workflows.py", "Workflows", ":material/account_tree:", "workflows"),
    PageSpec("pages/workflow.py", "Workflow", ":material/timeline:", "workflow"),
    PageSpec("pages/monitor.py", "Monitor", ":material/monitoring:", "monitor"),
    PageSpec("pages/settings.py", "Settings", ":material/settings:", "settings",
             roles=frozenset({"admin"})),
)


def landing_url_path() -> str:
    """A deep link opened at the root lands on its page."""
    if st.query_params.get("approval") or st.query_params.get("id"):
        return "approval"
    if st.query_params.get("workflow"):
        return "workflow"
    return "inbox"


st.set_page_config(page_title="Countersign", page_icon=":material/verified:", layout="wide")
services = get_services()
user = auth.resolve_user(services.db)
landing = landing_url_path()

if user is None:
    # Every URL shows the sign-in form and keeps its path and query, so
    # the visitor lands on the deep-linked page once signed in.
    def sign_in() -> None:
        auth.sign_in_page(services.db)

    signed_out = [
        st.Page(sign_in, title="Sign in", url_path=spec.url_path, default=spec.url_path == landing)
        for spec in PAGES
    ]
    st.navigation(signed_out, position="hidden").run()
    st.stop()

assert user is not None
page = st.navigation([
    st.Page(HERE / spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path,
            default=spec.url_path == landing, visibility="visible" if spec.visible else "hidden")
    for spec in PAGES if user.role in spec.roles
])
auth.sidebar_identity(user)
if user.method == "none":
    auth.no_sign_in_banner()
if services.runner is None:
    st.sidebar.caption("Runners: external (RUNNER=external)")
page.run()
