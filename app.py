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
from components.link_guard import link_guard
from components.outage import database_outage_notice
from components.services import get_services
from core.base.errors import ConfigurationError
from core.base.logging import configure_logging
from core.ops.production import require_production_secrets

# Absolute, so the app also runs when started from another script (tests).
HERE = Path(__file__).resolve().parent
ALL_ROLES = frozenset({"viewer", "approver", "admin", "service"})
HOME = "home"  # the root page's reserved path (it only opens the first page)


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
    PageSpec(
        "pages/policies.py",
        "Policies",
        ":material/policy:",
        "policies",
        roles=frozenset({"admin", "approver", "viewer"}),
    ),
    PageSpec(
        "pages/settings.py",
        "Settings",
        ":material/settings:",
        "settings",
        roles=frozenset({"admin"}),
        platform_only=True,
    ),
    PageSpec(
        "pages/tenants.py",
        "Tenants",
        ":material/domain:",
        "tenants",
        roles=frozenset({"admin"}),
        platform_only=True,
    ),
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


# The icon is a file of ours: a Material icon as page_icon is fetched from Google's fonts server.
st.set_page_config(page_title="Countersign", page_icon=str(HERE / "components" / "icon.png"), layout="wide")
configure_logging()  # idempotent across reruns
try:
    require_production_secrets("The dashboard")
except ConfigurationError as refusal:
    st.error(str(refusal))
    st.stop()
with database_outage_notice():  # a plain notice, not a traceback, while the database is down
    services = get_services()
    user = auth.resolve_user(services.db)
cookie_change = st.session_state.get(auth.COOKIE_PENDING)
auth.write_session_cookie()

if user is None:
    # Every URL shows the sign-in form and keeps its path and query, so
    # the visitor lands on the deep-linked page once signed in.
    def sign_in() -> None:
        auth.sign_in_page(services.db)

    signed_out = [st.Page(sign_in, title="Sign in", url_path=HOME, default=True)] + [
        st.Page(sign_in, title="Sign in", url_path=spec.url_path) for spec in PAGES
    ]
    with database_outage_notice():
        st.navigation(signed_out, position="hidden").run()
    st.stop()

assert user is not None
pages = {
    spec.url_path: st.Page(
        HERE / spec.path,
        title=spec.title,
        icon=spec.icon,
        url_path=spec.url_path,
        visibility="visible" if spec.visible else "hidden",
    )
    for spec in PAGES
    if user.role in spec.roles and not (spec.platform_only and user.tenant)
}


def open_first_page() -> None:
    """The app's root opens the Inbox, or the page a deep link (``/?approval=<id>``) is for."""
    target = deep_link_url_path()
    if cookie_change is not None:
        # The switch ends this run before the browser runs the cookie's script: the
        # page switched to writes it instead.
        st.session_state[auth.COOKIE_PENDING] = cookie_change
    st.switch_page(
        pages[target if target in pages else PAGES[0].url_path], query_params=st.query_params.to_dict()
    )


# The root is its own hidden page, so every real page keeps its own path:
# "/inbox" is the Inbox (a default page would only answer at "/").
page = st.navigation(
    [
        st.Page(open_first_page, title="Countersign", url_path=HOME, default=True, visibility="hidden"),
        *pages.values(),
    ]
)
auth.sidebar_identity(user)
link_guard()
if user.method == "none":
    auth.no_sign_in_banner()
if services.runner is None:
    st.sidebar.caption("Runners: external (RUNNER=external)")
with database_outage_notice():
    page.run()
