"""Who clicked in Slack: the clicking Slack user mapped to an approver email,
through SLACK_USER_MAP (JSON, either ``{"U123": "a@x.com"}`` or
``{"a@x.com": "U123"}``), the Settings page's user map, else Slack's
``users.info``. Core's rule (core.identity.permissions) then decides whether that
person may answer, before anything is shown or done for them; a link made before the
address's account was removed answers for nobody (core.identity.issued).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import structlog

from core.base.errors import NotAuthorized
from core.base.secrets import secret as _secret
from core.channels.registry import read_channel_settings
from core.identity.addresses import address_problem
from core.identity.issued import check_link, user_map_pairs
from core.identity.permissions import Action, require

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)

__all__ = ["api_url", "configured_user_map", "email_from_slack_api", "email_of", "slack_user_id"]


def _user_maps(db: Database) -> tuple[dict[str, str], dict[str, str]]:
    """(SLACK_USER_MAP, the Slack settings' ``user_map``), each Slack user id -> email."""
    pairs: dict[str, Any] = {}
    raw = _secret("SLACK_USER_MAP")
    if raw:
        try:
            loaded = json.loads(raw)
        except ValueError:
            log.warning("slack.user_map_invalid", reason="SLACK_USER_MAP is not JSON")
            loaded = {}
        pairs.update(loaded if isinstance(loaded, dict) else {})
    _, settings = read_channel_settings(db, "slack")
    return user_map_pairs(pairs), user_map_pairs(settings.get("user_map"))


def configured_user_map(db: Database) -> dict[str, str]:
    """Slack user id → email, from SLACK_USER_MAP and the Slack settings' ``user_map``
    (which wins for an id both name).

    Either direction is accepted: the channel that sends uses email → id.
    """
    environment, settings = _user_maps(db)
    return {**environment, **settings}


def api_url() -> str:
    from slack_sdk import WebClient

    url = os.environ.get("SLACK_API_URL") or WebClient.BASE_URL
    return url if url.endswith("/") else url + "/"


def email_from_slack_api(user_id: str) -> str | None:
    """The user's email from Slack's ``users.info`` (needs users:read.email)."""
    token = _secret("SLACK_BOT_TOKEN")
    if not token:
        return None
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    try:
        response = WebClient(token=token, base_url=api_url(), timeout=5).users_info(user=user_id)
    except (SlackApiError, OSError) as exc:
        log.warning("slack.users_info_failed", user=user_id, error=str(exc))
        return None
    email = ((response.get("user") or {}).get("profile") or {}).get("email")
    return str(email).lower() if email else None


def email_of(db: Database, user_id: str, *, approval_id: str | None = None) -> str:
    """The address the clicking Slack user acts as, once core says that person may answer
    (``approvals:answer``; every Slack action, ``/approvals`` included, comes here first).

    Refused (``NotAuthorized``): a Slack user linked to nobody; a link to an address that
    is no plain one (core.identity.addresses); a link made before the address's account
    was removed, now that it is added again (core.identity.issued: SLACK_USER_MAP's
    links and those of the Settings map made before); and an account that may not
    answer (disabled, removed, a role that does not answer), with the very message and
    ``permission.refused`` event its click would get (``approval_id``: the request
    clicked)."""
    key = user_id.upper()  # Slack ids are upper case; a map edited by hand may not be.
    environment, settings = _user_maps(db)
    source = ""
    if key in settings:
        email, source = settings[key], "the Slack settings' user_map"
    elif key in environment:
        email, source = environment[key], "SLACK_USER_MAP"
    else:
        email = email_from_slack_api(user_id) or ""
    if not email:
        raise NotAuthorized(
            f"Your Slack account ({user_id}) is not linked to a Countersign "
            "approver; ask an admin to add it to SLACK_USER_MAP."
        )
    if (problem := address_problem(email)) is not None:
        raise NotAuthorized(
            f"Your Slack account ({user_id}) is linked to an address that is not a plain "
            f"one: {problem}; ask an admin to correct the link ({source or 'Slack profile'})."
        )
    email = email.strip().lower()
    if source:  # Slack's own users.info is Slack's word now, not a link made here
        check_link(db, "slack", key, email, in_settings=key in settings, source=source)
    require(db, email, Action.APPROVALS_ANSWER, approval_id=approval_id)
    return email


def slack_user_id(payload: dict[str, Any]) -> str:
    user = payload.get("user")
    return str(user.get("id") or "") if isinstance(user, dict) else ""
