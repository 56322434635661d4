"""What was issued to an account works for that account only, never for one added later
under the same address.

Removing an account deletes its row and its API tokens (core.identity.users.remove_user),
and its ``user.removed`` event refuses the address everything (core.identity.permissions)
until the account is added again. The account added again is another account: nothing
issued to the removed one works for it, even after logging out everywhere had ended it
and whatever password the new one has.

- A browser session (the dashboard, ``/approve``) names the account row it was made
  for (``account_mark``: when the row was made, to the microsecond) beside its session
  version, so a cookie of the removed account matches no account added since,
  whatever version that one is at (core.identity.users.session_user).
- An API token made before a removal of its address is refused (``token_refusal``),
  should one have outlived its account (they are deleted with it).
- An email link issued before the removal is refused (``check_issued``, called by the
  email confirmation page before it spends the link), the link left unspent.
- A Slack user linked to the address before the account was added again is refused
  (``check_link``): ``SLACK_USER_MAP`` says nothing of when a pair was made, and the
  Settings user map's pair counts from the last ``channel.configured`` event that saved
  it; an admin links the Slack user again by saving the Slack settings with the pair
  once the account is added again.

Each refusal names why and is recorded as a ``permission.refused`` event (``auth.token_refused``
for a token), as the refusals of a disabled or removed account are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from core.store.tables import ApiToken, User, WorkflowEvent

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database

__all__ = [
    "account_mark",
    "check_issued",
    "check_link",
    "issue_refusal",
    "link_made_at",
    "removed_since",
    "token_refusal",
    "user_map_pairs",
]

# Two processes' clocks may disagree a little (as for email links).
CLOCK_SKEW = timedelta(seconds=60)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CONFIGURED_EVENT = "channel.configured"  # core.channels.registry.store_channel_settings


def account_mark(user: User) -> int:
    """The account row ``user`` is, among every row its address ever had: when it was
    made, in microseconds (a removed account's row never comes back; one added again
    is made later)."""
    made = user.created_at if user.created_at.tzinfo else user.created_at.replace(tzinfo=UTC)
    return (made - _EPOCH) // timedelta(microseconds=1)


def removed_since(session: Session, address: str, when: datetime | None) -> datetime | None:
    """When the account of ``address`` was last removed after ``when`` (any time when
    ``when`` is None), or None: not removed since."""
    from core.identity.permissions import REMOVED_EVENT

    user = WorkflowEvent.data["user"].as_string()
    query = select(func.max(WorkflowEvent.created_at)).where(
        WorkflowEvent.workflow_id.is_(None),  # an account's events belong to no workflow (indexed)
        WorkflowEvent.event_type == REMOVED_EVENT,
        user == address.strip().lower(),
    )
    if when is not None:
        query = query.where(WorkflowEvent.created_at > when)
    found = session.scalar(query)
    if found is not None and found.tzinfo is None:
        found = found.replace(tzinfo=UTC)  # func.max loses the column's type on SQLite
    return found if isinstance(found, datetime) else _parsed(found)


def _parsed(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _day(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def issue_refusal(session: Session, address: str, issued_at: datetime | None, what: str) -> str | None:
    """Why something issued to ``address`` at ``issued_at`` (None: when is unknown) does
    not work for its account now (None: it does): the account was removed since, and
    the one there now was added after. An address with no account now is left to
    core.identity.permissions (a removed account's, refused everything)."""
    email = address.strip().lower()
    if session.get(User, email) is None:
        return None
    removed = removed_since(session, email, issued_at)
    if removed is None:
        return None
    return f"{what} was issued before the account was removed on {_day(removed)} and added again"


def check_issued(
    db: Database,
    address: str,
    issued_at: datetime | None,
    what: str,
    *,
    approval_id: str | None = None,
) -> None:
    """Refuse (``NotAuthorized``, a ``permission.refused`` event) an answer by ``address``
    with something issued to it before its account was removed (``issue_refusal``)."""
    from core.identity.permissions import Action, refuse

    with db.read() as session:
        why = issue_refusal(session, address, issued_at, what)
    if why is not None:
        refuse(None, address.strip().lower(), Action.APPROVALS_ANSWER, why, db=db, approval_id=approval_id)


def token_refusal(session: Session, row: ApiToken, account: User) -> str | None:
    """Why the token ``row`` does not act as ``account`` (None: it does): it was made
    for an account of the address removed since (``account`` was added again after)."""
    made = row.created_at
    if made > account.created_at + CLOCK_SKEW:
        return None  # made for this account (the usual case: no query)
    removed = removed_since(session, row.user_email, made)
    if removed is None:
        return None
    return (
        f"The API token {row.name!r} was made for the account of {row.user_email} removed "
        f"{_day(removed)}, not for the account added since."
    )


def user_map_pairs(raw: Any) -> dict[str, str]:
    """A user map (``{"U123": "a@x.com"}`` or ``{"a@x.com": "U123"}``, either way, as
    SLACK_USER_MAP and the Slack settings give it) as channel user id -> address."""
    mapping: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        return mapping
    for key, value in raw.items():
        key, value = str(key).strip(), str(value).strip()
        if "@" in key and "@" not in value:
            mapping[value.upper()] = key.lower()
        elif "@" in value:
            mapping[key.upper()] = value.lower()
    return mapping


def _map_of(state: Any) -> dict[str, str]:
    settings = state.get("settings") if isinstance(state, Mapping) else None
    return user_map_pairs(settings.get("user_map") if isinstance(settings, Mapping) else None)


def link_made_at(session: Session, channel: str, user_id: str, address: str) -> datetime | None:
    """When an admin last saved the channel's settings with a user map linking
    ``user_id`` to ``address`` (the latest ``channel.configured`` event whose settings
    hold the pair), or None if no event says."""
    events = session.execute(
        select(WorkflowEvent.created_at, WorkflowEvent.after)
        .where(
            WorkflowEvent.workflow_id.is_(None),
            WorkflowEvent.event_type == CONFIGURED_EVENT,
            WorkflowEvent.data["channel"].as_string() == channel,
        )
        .order_by(WorkflowEvent.created_at.desc(), WorkflowEvent.id.desc())
    ).all()
    key, email = user_id.strip().upper(), address.strip().lower()
    return next((at for at, after in events if _map_of(after).get(key) == email), None)


def check_link(
    db: Database, channel: str, user_id: str, address: str, *, in_settings: bool, source: str
) -> None:
    """Refuse (``NotAuthorized``, a ``permission.refused`` event) a channel user linked to
    ``address`` before its account was added again after a removal: the link is the
    Settings user map's (``in_settings``: made when an admin last saved the settings
    with it) or ``source``'s, which says nothing of when (``SLACK_USER_MAP``). An
    address never removed keeps its links."""
    from core.identity.permissions import Action, refuse

    email = address.strip().lower()
    with db.read() as session:
        account = session.get(User, email)
        if account is None or removed_since(session, email, None) is None:
            return  # never removed (or removed now: core.identity.permissions refuses it)
        made = link_made_at(session, channel, user_id, email) if in_settings else None
        if made is not None and made >= account.created_at:
            return
    why = (
        f"the {channel} link of {user_id.upper()} ({source}) was made before the account "
        f"was removed and added again on {_day(account.created_at)}"
    )
    refuse(
        None,
        email,
        Action.APPROVALS_ANSWER,
        why,
        db=db,
        message=(
            f"{email} may not {Action.APPROVALS_ANSWER} ({why}); an admin links the "
            f"{channel.capitalize()} user again in Settings (the {channel} settings' user_map)."
        ),
    )
