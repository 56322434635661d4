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
from components.outage import database_outage_notice
from components.services import get_services
from core.base.errors import ConfigurationError
from core.base.logging import configure_logging
from core.ops.production import require_production_secrets

# Absolute, so the app also runs when started from another script (tests).
HERE = Path(__file__).resolve().parent
ALL_ROLES = frozenset({"viewer", "approver", "admin", "service"})


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    url_path: str
    roles: frozenset[str] = ALL_ROLES
    visible: bool = True
    # Platform-wide pages: not for users of a tenant, whatever their role (core.store.tenancy).
    platform_only: bool = False


PAGES = (
    PageSpec("pages/inbox.py", "Inbox", ":material/inbox:", "inbox"),
    PageSpec("pages/approval.py", "Approval", ":material/approval:", "approval", visible=False),
    PageSpec("pages/workflows.py", "Workflows", ":material/account_tree:", "workflows"),
    PageSpec("pages/workflow.py", "Workflow", ":material/timeline:", "workflow"),
    PageSpec("pages/monitor.py", "Monitor", ":material/monitoring:", "monitor"),
    PageSpec("pages/logs.py", "Execution logs", ":material/receipt_long:", "logs"),
    PageSpec("pages/agents.py", "Agents", ":material/smart_toy:", "agents"),
    PageSpec("pages/sessions.py", "Sessions", ":material/forum:", "sessions"),
    PageSpec("pages/policies.py", "Policies", ":material/policy:", "policies",
             roles=frozenset({"admin", "approver", "viewer"})),
    PageSpec("pages/settings.py", "Settings", ":material/settings:", "settings",
             roles=frozenset({"admin"}), platform_only=True),
    PageSpec("pages/tenants.py", "Tenants", ":material/domain:", "tenants",
             roles=frozenset({"admin"}), platform_only=True),
)


def deep_link_url_path() -> str | None:
    """The page a deep link opened at the root (``/?approval=<id>``) is for."""
    if st.query_params.get("approval") or st.query_params.get("id"):
        return "approval"
    if st.query_params.get("workflow"):
        return "workflow"
    if st.query_params.get("session"):
        return "sessions"
    return None


st.set_page_config(page_title="Countersign", page_icon=":material/verified:", layout="wide")
configure_logging()  # idempotent across reruns
try:
    require_production_secrets("The dashboard")
except ConfigurationError as refusal:
    st.error(str(refusal))
    st.stop()
with database_outage_notice():  # a plain notice, not a traceback, while the database is down
    services = get_services()
    user = auth.resolve_user(services.db)
auth.write_session_cookie()

if user is None:
    # Every URL shows the sign-in form and keeps its path and query, so
    # the visitor lands on the deep-linked page once signed in.
    def sign_in() -> None:
        auth.sign_in_page(services.db)

    signed_out = [
        st.Page(sign_in, title="Sign in", url_path=spec.url_path, default=spec is PAGES[0])
        for spec in PAGES
    ]
    with database_outage_notice():
        st.navigation(signed_out, position="hidden").run()
    st.stop()

assert user is not None
pages = {
    spec.url_path: st.Page(HERE / spec.path, title=spec.title, icon=spec.icon,
                           url_path=spec.url_path, default=spec is PAGES[0],
                           visibility="visible" if spec.visible else "hidden")
    for spec in PAGES if user.role in spec.roles and not (spec.platform_only and user.tenant)
}
page = st.navigation(list(pages.values()))
deep_link = deep_link_url_path()
if page.url_path in ("", PAGES[0].url_path) and deep_link and deep_link in pages:
    st.switch_page(pages[deep_link], query_params=st.query_params.to_dict())
auth.sidebar_identity(user)
if user.method == "none":
    auth.no_sign_in_banner()
if services.runner is None:
    st.sidebar.caption("Runners: external (RUNNER=external)")
with database_outage_notice():
    page.run()
