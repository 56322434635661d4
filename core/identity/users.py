"""Local accounts: salted scrypt password hashes, roles and groups."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from core.base.errors import Invalid, NotAuthorized, NotFound
from core.store.tables import ApiToken, SignInFailure, User, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database

# admin, approver, viewer and service: what each may do is core.identity.permissions.ROLE_ACTIONS.
ROLES = ("viewer", "approver", "admin", "service")
# scrypt cost: ~50 ms per check on one core; fine for sign-in, slow for guessing.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# Sign-in limits: refused sign-ins counted in the database (every process agrees).
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW = timedelta(minutes=15)
SIGN_IN_ACTOR = "sign-in"
LOCKED_MESSAGE = "Too many failed sign-ins; try again later."


def _now() -> datetime:
    """The clock the sign-in limits read (a test replaces it)."""
    return utcnow()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encoded_salt = base64.b64encode(salt).decode()
    encoded_digest = base64.b64encode(digest).decode()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded_salt}${encoded_digest}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def add_user(
    db: Database,
    email: str,
    *,
    role: str = "approver",
    password: str | None = None,
    name: str = "",
    groups: list[str] | None = None,
    tenant: str | None = None,
    actor: str = "system",
) -> User:
    """Create or update a local account (``users:manage``; a tenant's admin
    manages only that tenant's accounts). Creating an account or changing its
    role or tenant is written to the audit trail. The address must be a plain
    one (``addresses.check_address``: ASCII, no ``agent:``/``system:``/``cli:``, no
    colon before the ``@``)."""
    from core.identity.addresses import check_address, check_group
    from core.identity.permissions import Action, check
    from core.store.events import add_event

    if role not in ROLES:
        raise Invalid(f"Unknown role {role!r}; one of {', '.join(ROLES)}.")
    email = check_address(email, "email")
    if groups is not None:
        groups = [check_group(g, f"groups[{i}]") for i, g in enumerate(groups) if g.strip()]
    with db.session() as session:
        existing = session.get(User, email)
        before = {"role": existing.role, "tenant": existing.tenant} if existing else None
        target_tenant = tenant if tenant is not None else (existing.tenant if existing else None)
        check(session, actor, Action.USERS_MANAGE, tenant=target_tenant)
        if before is not None and before["tenant"] != target_tenant:
            check(session, actor, Action.USERS_MANAGE, tenant=before["tenant"])
        user = existing or User(email=email, created_at=utcnow())
        user.role = role
        user.name = name or user.name or email.split("@")[0]
        if groups is not None:
            user.groups = list(dict.fromkeys(groups))
        if password is not None:
            user.password_hash = hash_password(password)
        if tenant is not None:
            user.tenant = tenant
        user.updated_at = utcnow()
        after = {"role": user.role, "tenant": user.tenant}
        # A changed password, role or tenant ends the account's sessions. A new account
        # starts at version 0: its sessions also name its row (session_token), so those
        # of an account removed before under this address never match it.
        if before is not None and (password is not None or before != after):
            user.session_version = (user.session_version or 0) + 1
        elif before is None:
            user.session_version = 0
        session.add(user)
        if before is None:
            add_event(session, "user.created", actor, after=after, data={"user": email})
        elif before != after:
            add_event(session, "user.role_changed", actor, before=before, after=after, data={"user": email})
    return user


def remove_user(db: Database, email: str, *, actor: str = "system") -> None:
    """Remove a local account (``users:manage``): the row goes, and with it its groups,
    password and API tokens (deleted, not only refused); its sessions end. Its
    ``user.removed`` event makes core.identity.permissions refuse the address everything
    (an email link, a Slack click mapped to it, any request naming it) until the account
    is added again, and nothing issued to this account works for the one added again
    (core.identity.issued); nothing is sent to it (``account_state.disabled_among``)."""
    from core.identity.permissions import REMOVED_EVENT, Action, check
    from core.store.events import add_event

    email = email.strip().lower()
    with db.session() as session:
        # Locked, as create_token locks it: a token being made for the account either
        # commits first (and is deleted below) or finds no account.
        user = session.get(User, email, with_for_update=True)
        if user is None:
            raise NotFound(f"No user {email!r}.")
        check(session, actor, Action.USERS_MANAGE, tenant=user.tenant)
        before = {"role": user.role, "tenant": user.tenant}
        session.delete(user)
        session.flush()
        deleted = session.execute(delete(ApiToken).where(ApiToken.user_email == email))
        tokens = int(getattr(deleted, "rowcount", 0) or 0)
        add_event(session, REMOVED_EVENT, actor, before=before, data={"user": email, "tokens": tokens})


def end_sessions(db: Database, email: str, *, actor: str = "system") -> int:
    """Sign the account out everywhere: every session made before is refused.

    Users may end their own sessions; anyone else needs ``users:manage``.
    Returns the new session version.
    """
    from core.identity.permissions import Action, check
    from core.store.events import add_event

    email = email.strip().lower()
    with db.session() as session:
        user = session.get(User, email)
        if user is None:
            raise NotFound(f"No user {email!r}.")
        if actor.strip().lower() != email:
            check(session, actor, Action.USERS_MANAGE, tenant=user.tenant)
        user.session_version = (user.session_version or 0) + 1
        add_event(session, "user.sessions_ended", actor, data={"user": email})
        return user.session_version


def session_token(user: User) -> str:
    """A browser session token for ``user``: its row (core.identity.issued.account_mark)
    at its current session version."""
    from core.identity.browser_sessions import make_session_token
    from core.identity.issued import account_mark

    return make_session_token(user.email, user.session_version or 0, account_mark(user))


def session_user(db: Database, token: str | None) -> User | None:
    """The account a session token signs in, or None: forged, old, its account
    removed or disabled, made for another account of the address (one removed since:
    the token names the row it was made for), or its sessions ended since (a stale
    session version), or not a plain address (an account made before addresses were
    checked). A token made before tokens named their row is refused: sign in again."""
    from core.identity.addresses import address_problem
    from core.identity.browser_sessions import read_session_claims
    from core.identity.issued import account_mark

    claims = read_session_claims(token)
    if claims is None or claims.account is None:
        return None
    if address_problem(claims.email) is not None:
        return None
    with db.read() as session:
        user = session.get(User, claims.email.strip().lower())
    if user is None or user.disabled_at is not None:
        return None
    if account_mark(user) != claims.account or (user.session_version or 0) != claims.version:
        return None
    return user


def _failures(session: Session, column: Any, value: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(SignInFailure).where(column == value, SignInFailure.at > since)
        )
        or 0
    )


def _record_failure(
    session: Session,
    account: str,
    address: str,
    now: datetime,
    *,
    by_account: int,
    by_address: int,
    reason: str,
) -> None:
    """A refused sign-in: its row for the limits, its audit event, and a lock event
    when it is the one that reaches a limit."""
    from core.store.events import add_event

    session.add(SignInFailure(account=account, address=address, at=now))
    add_event(
        session,
        "auth.sign_in_refused",
        SIGN_IN_ACTOR,
        data={"user": account, "address": address, "reason": reason},
    )
    for limit, count, most in (
        ("account", by_account, MAX_FAILURES_PER_ACCOUNT),
        ("address", by_address, MAX_FAILURES_PER_ADDRESS),
    ):
        if count + 1 == most:
            add_event(
                session,
                "auth.sign_in_locked",
                SIGN_IN_ACTOR,
                data={
                    "user": account,
                    "address": address,
                    "limit": limit,
                    "until": (now + FAILURE_WINDOW).isoformat(),
                },
            )


def sign_in(db: Database, email: str, password: str, *, address: str | None) -> User:
    """A sign-in from a form (dashboard or gateway), limited per account and per address.

    After ``MAX_FAILURES_PER_ACCOUNT`` refused sign-ins to one account, or
    ``MAX_FAILURES_PER_ADDRESS`` from one address, within ``FAILURE_WINDOW``,
    every attempt is refused (even with the right password) until the window
    has passed. A disabled account is refused after its right password
    (core.identity.account_state). An address that is not a plain one (``agent:``,
    ``system:``, ``cli:``, a colon before the ``@``, not ASCII: ``addresses.address_problem``)
    never signs in, even an account made before addresses were checked. Each refusal
    and each lock is an audit event.
    """
    from core.identity.addresses import address_problem

    account = email.strip().lower()[:320]
    address = (address or "unknown")[:100]
    now = _now()
    since = now - FAILURE_WINDOW
    with db.session() as session:
        counts = {
            "by_account": _failures(session, SignInFailure.account, account, since),
            "by_address": _failures(session, SignInFailure.address, address, since),
        }
        locked = (
            counts["by_account"] >= MAX_FAILURES_PER_ACCOUNT
            or counts["by_address"] >= MAX_FAILURES_PER_ADDRESS
        )
        if locked:
            _record_failure(session, account, address, now, **counts, reason="locked")
    if locked:
        raise NotAuthorized(LOCKED_MESSAGE)
    problem = address_problem(account)
    if problem is not None and "@" in account:
        with db.session() as session:
            _record_failure(session, account, address, now, **counts, reason="not a plain address")
        raise NotAuthorized(f"email: {problem}.")
    try:
        user = authenticate(db, account, password)
    except NotAuthorized:
        with db.session() as session:
            _record_failure(session, account, address, now, **counts, reason="wrong email or password")
        raise
    with db.session() as session:  # rows older than the window are of no further use
        session.execute(delete(SignInFailure).where(SignInFailure.at <= since))
    if user.disabled_at is not None:  # told only after the right password
        from core.identity.account_state import DISABLED_SIGN_IN, record_refusal

        record_refusal(db, "auth.sign_in_refused", SIGN_IN_ACTOR, account, address=address)
        raise NotAuthorized(DISABLED_SIGN_IN)
    return user


def outside_sign_in_refusal(db: Database, email: str) -> str | None:
    """Why an identity vouched for elsewhere (the dashboard's OIDC sign-in) may not be
    let in as ``email`` (None: it may, with its account's role or as a person without
    one): not a plain address (``addresses.address_problem``), or an account that is
    disabled or was removed. Never a system actor."""
    from core.identity.addresses import address_problem
    from core.identity.permissions import principal

    problem = address_problem(email)
    if problem is not None:
        return f"email: {problem}."
    with db.read() as session:
        who = principal(session, email)
    if who.disabled or who.removed:
        return f"{who.actor}: {who.description}."
    return None


def authenticate(db: Database, email: str, password: str) -> User:
    with db.read() as session:
        user = session.get(User, email.strip().lower())
    if user is None or not check_password(password, user.password_hash):
        raise NotAuthorized("Wrong email or password.")
    return user


def get_user(db: Database, email: str) -> User:
    with db.read() as session:
        user = session.get(User, email.strip().lower())
    if user is None:
        raise NotFound(f"No user {email!r}.")
    return user


def list_users(db: Database) -> list[User]:
    with db.read() as session:
        return list(session.scalars(select(User).order_by(User.email)).all())
