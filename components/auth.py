"""Who is using the dashboard: OIDC (st.login), local accounts, or no sign-in.

- OIDC when ``.streamlit/secrets.toml`` has an ``[auth]`` section: the
  identity comes from ``st.user``; the role from the local account of the
  same email (viewer when there is none).
- Local accounts otherwise (``python -m core users add``): a sign-in form;
  the signed-in email lives in session state and in a signed session cookie
  (core.identity.browser_sessions, shared with the gateway) that keeps it across reloads and
  tabs; its role is read from the database on every run, so a changed role
  applies at once.
- No sign-in only when ``COUNTERSIGN_AUTH=none`` AND the server is bound to
  localhost; everyone is then the local admin and every page says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from components.badges import badge_markdown
from components.text import md
from core.base.errors import CountersignError, NotFound
from core.identity import unknown_people_may_view
from core.identity.browser_sessions import SESSION_COOKIE, SESSION_MAX_AGE
from core.identity.users import (
    add_user,
    get_user,
    outside_sign_in_refusal,
    session_token,
    session_user,
    sign_in,
)

if TYPE_CHECKING:
    from core.store.db import Database

AUTH_ENV = "COUNTERSIGN_AUTH"
LOCAL_ADMIN_ENV = "COUNTERSIGN_LOCAL_ADMIN"
DEFAULT_LOCAL_ADMIN = "admin@localhost"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SESSION_EMAIL = "auth.email"
SIGNED_OUT = "auth.signed_out"
COOKIE_PENDING = "auth.cookie_pending"
CURRENT = "auth.current"
NO_ACCOUNT = "auth.no_account"
DEEP_LINK_PARAMS = ("approval", "workflow", "id")


@dataclass(frozen=True)
class SignedIn:
    email: str
    role: str
    name: str
    method: str  # "local", "oidc" or "none"
    # The account's tenant; None for platform users, who see every tenant (core.store.tenancy).
    tenant: str | None = None

    @property
    def can_answer(self) -> bool:
        return self.role in ("approver", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_platform_admin(self) -> bool:
        """An admin of the whole platform, not of one tenant."""
        return self.is_admin and self.tenant is None


def _secrets_auth() -> Any:
    try:
        return st.secrets["auth"] if "auth" in st.secrets else None
    except Exception:  # noqa: BLE001  (no secrets file, or one that does not parse)
        return None


def oidc_configured() -> bool:
    return _secrets_auth() is not None


def oidc_providers() -> list[str]:
    """Named providers (``[auth.google]``); empty when the section is flat."""
    section = _secrets_auth()
    if section is None:
        return []
    return [name for name in section.keys() if hasattr(section[name], "keys")]


def no_sign_in_requested() -> bool:
    return os.environ.get(AUTH_ENV, "").strip().lower() == "none"


def bound_to_localhost() -> bool:
    address = st.get_option("server.address")
    return bool(address) and str(address) in LOCAL_HOSTS


def no_sign_in_active() -> bool:
    return no_sign_in_requested() and bound_to_localhost()


def _role_of(db: Database, email: str) -> tuple[str, str, str | None] | None:
    try:
        user = get_user(db, email)
    except NotFound:
        return None
    return user.role, user.name, user.tenant or None


def _disabled(db: Database, email: str) -> bool:
    try:
        return get_user(db, email).disabled_at is not None
    except NotFound:
        return False


def resolve_user(db: Database) -> SignedIn | None:
    """The signed-in person for this run, or None (kept in session state for pages)."""
    user: SignedIn | None = None
    if no_sign_in_active():
        email = os.environ.get(LOCAL_ADMIN_ENV, DEFAULT_LOCAL_ADMIN).strip().lower()
        found = _role_of(db, email)
        if found is None or found[0] != "admin":
            add_user(db, email, role="admin", name="Local admin")
        user = SignedIn(email, "admin", "Local admin", "none")
    elif oidc_configured():
        if st.user.is_logged_in and st.user.get("email"):
            email = str(st.user.get("email")).strip().lower()
            # A disabled or removed account, or an address that is not a plain one (never a
            # system actor), is refused, never let in as a person without an account.
            refused = outside_sign_in_refusal(db, email) is not None
            found = None if refused else _role_of(db, email)
            if found is None and not refused and unknown_people_may_view(db):
                found = ("viewer", str(st.user.get("name") or email), None)
            if found is None:
                # With tenants, a platform viewer would see every tenant's rows.
                st.session_state[NO_ACCOUNT] = email
            else:
                st.session_state.pop(NO_ACCOUNT, None)
                user = SignedIn(email, found[0], found[1], "oidc", found[2])
    elif st.session_state.get(SESSION_EMAIL) or _cookie_token():
        # The session token (this browser session's, or the cookie's) is checked on
        # every run: a removed account or ended sessions (stale version) sign out.
        token = st.session_state.get(SESSION_EMAIL) or _cookie_token()
        account = session_user(db, str(token))
        found = _role_of(db, account.email) if account is not None else None
        if account is None or found is None:
            st.session_state.pop(SESSION_EMAIL, None)
            st.session_state[COOKIE_PENDING] = ""
        else:
            st.session_state[SESSION_EMAIL] = token
            user = SignedIn(account.email, found[0], found[1], "local", found[2])
    st.session_state[CURRENT] = user
    return user


def _cookie_token() -> str | None:
    """A local sign-in kept across reloads and tabs by the signed session cookie.

    Ignored after signing out in this browser session, even if the browser
    has not dropped the cookie yet.
    """
    if st.session_state.get(SIGNED_OUT):
        return None
    try:
        value = st.context.cookies.get(SESSION_COOKIE)
    except Exception:  # noqa: BLE001  (no browser request behind this run, e.g. AppTest)
        return None
    return value or None


def write_session_cookie() -> None:
    """Set (after sign-in) or clear (after sign-out) the session cookie in the browser.

    Streamlit cannot set cookies from the server, so a one-line script does,
    on the run after the change; the value is our own signed token. Over
    HTTPS (the page's own scheme, whatever proxy is in front) it is ``Secure``.
    """
    pending = st.session_state.pop(COOKIE_PENDING, None)
    if pending is None:
        return
    secure = "(location.protocol === 'https:' ? '; Secure' : '')"
    if pending:
        script = (
            f"document.cookie = '{SESSION_COOKIE}={pending}; path=/; "
            f"max-age={SESSION_MAX_AGE}; SameSite=Lax' + {secure};"
        )
    else:
        script = f"document.cookie = '{SESSION_COOKIE}=; path=/; max-age=0; SameSite=Lax' + {secure};"
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def _ensure_entry_script() -> None:
    """Run the page through app.py, never on its own.

    With a ``pages/`` folder beside the entry script, Streamlit starts in its
    old folder-based multipage mode until ``st.navigation`` is first called
    (and ``AppTest`` starts every run that way): a deep link opened first
    would then run the page file directly, skipping sign-in. ``st.navigation``
    switches that mode off before it runs a page, so if it is still on here,
    switch it off and run again from app.py, same URL.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def signed_in() -> SignedIn:
    """The current user for a page; stops the page when nobody is signed in."""
    _ensure_entry_script()
    user = st.session_state.get(CURRENT)
    if not isinstance(user, SignedIn):
        st.warning("Please sign in.")
        st.stop()
    return user


def _deep_link_note() -> None:
    params = st.query_params  # whoever wrote the link wrote these: text only
    if params.get("approval") or params.get("id"):
        st.info(f"Sign in to open approval request {md(params.get('approval') or params.get('id'))}.")
    elif params.get("workflow"):
        st.info(f"Sign in to open workflow {md(params['workflow'])}.")


def sign_in_page(db: Database) -> None:
    """The page a signed-out visitor sees, whatever URL they opened.

    The URL (path and query parameters) is left as it is, so after signing
    in the same run continues to the deep-linked approval or workflow.
    """
    st.title("Countersign")
    st.caption("Human approvals for AI agents.")
    if no_sign_in_requested() and not bound_to_localhost():
        st.warning(
            f"{AUTH_ENV}=none is ignored: sign-in can only be switched off when the server "
            "is bound to localhost (--server.address 127.0.0.1)."
        )
    if oidc_configured() and st.session_state.get(NO_ACCOUNT):
        email = st.session_state[NO_ACCOUNT]
        refusal = outside_sign_in_refusal(db, email)
        if _disabled(db, email):
            st.error(f"{md(email)}: this account is disabled; ask an admin to enable it.")
        elif refusal is not None:
            st.error(md(refusal))
        else:
            st.error(
                f"{md(email)} has no account in this Countersign. It serves "
                "several tenants, so an admin must add you before you can see anything "
                "(python -m core users add EMAIL --tenant SLUG)."
            )
        st.button("Sign out", key="signin.oidc_signout", on_click=_oidc_sign_out)
        return
    _deep_link_note()
    if oidc_configured():
        providers = oidc_providers()
        if len(providers) > 1:
            for provider in providers:
                st.button(
                    f"Sign in with {provider}",
                    key=f"signin.oidc.{provider}",
                    on_click=st.login,
                    args=(provider,),
                )
        else:
            st.button("Sign in", key="signin.oidc", type="primary", on_click=st.login, args=tuple(providers))
        return
    with st.form("signin", border=True, enter_to_submit=True):
        st.subheader("Sign in")
        email = st.text_input("Email", key="signin.email", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="signin.password", autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in", key="signin.submit", type="primary")
    if submitted:
        try:
            user = sign_in(db, email, password, address=_client_address())
        except CountersignError as exc:
            st.error(str(exc))
            return
        token = session_token(user)
        st.session_state[SESSION_EMAIL] = token
        st.session_state[COOKIE_PENDING] = token
        st.session_state.pop(SIGNED_OUT, None)
        st.rerun()


def _client_address() -> str | None:
    """The browser's address as Streamlit sees it (for the per-address sign-in limit)."""
    try:
        address = getattr(st.context, "ip_address", None)
    except Exception:  # noqa: BLE001  (no browser request behind this run)
        return None
    return address if isinstance(address, str) else None


def _oidc_sign_out() -> None:
    st.session_state.pop(NO_ACCOUNT, None)
    st.logout()


def sign_out() -> None:
    if st.session_state.get(CURRENT) is not None and st.session_state[CURRENT].method == "oidc":
        st.logout()
    st.session_state.pop(SESSION_EMAIL, None)
    st.session_state[CURRENT] = None
    st.session_state[SIGNED_OUT] = True
    st.session_state[COOKIE_PENDING] = ""


def sidebar_identity(user: SignedIn) -> None:
    with st.sidebar:
        st.markdown(f"**{md(user.name or user.email)}**  \n{md(user.email)} {badge_markdown(user.role)}")
        if user.method != "none":
            st.button("Sign out", key="auth.signout", on_click=sign_out)


def no_sign_in_banner() -> None:
    st.warning(
        f"No sign-in: {AUTH_ENV}=none on a server bound to localhost. Everyone who can open this "
        "page acts as the local admin.",
        icon=":material/lock_open:",
    )
