"""Who clicked in Slack: the clicking Slack user mapped to an approver email,
through SLACK_USER_MAP (JSON, either ``{"U123": "a@x.com"}`` or
``{"a@x.com": "U123"}``), the Settings page's user map, else Slack's
``users.info``. The engine's own authorization then decides whether that person
may answer.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import structlog

from core.base.errors import (
    NotAuthorized,
)
from core.base.secrets import secret as _secret
from core.channels.registry import read_channel_settings
from core.identity.addresses import address_problem

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)

__all__ = ["api_url", "configured_user_map", "email_from_slack_api", "email_of", "slack_user_id"]


def configured_user_map(db: Database) -> dict[str, str]:
    """Slack user id → email, from SLACK_USER_MAP and the Slack settings' ``user_map``.

    Either direction is accepted: the channel that sends uses email → id.
    """
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
    if isinstance(settings.get("user_map"), dict):
        pairs.update(settings["user_map"])
    mapping: dict[str, str] = {}
    for key, value in pairs.items():
        key, value = str(key).strip(), str(value).strip()
        if "@" in key and "@" not in value:
            mapping[value.upper()] = key.lower()
        elif "@" in value:
            mapping[key.upper()] = value.lower()
    return mapping


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


def email_of(db: Database, user_id: str) -> str:
    """The address the clicking Slack user acts as; refused (``NotAuthorized``) when
    linked to nobody, or to an address that is no plain one (core.identity.addresses)."""
    # Slack ids are upper case; a map edited by hand may not be.
    linked = configured_user_map(db).get(user_id.upper())
    email = linked or email_from_slack_api(user_id)
    if not email:
        raise NotAuthorized(
            f"Your Slack account ({user_id}) is not linked to a Countersign "
            "approver; ask an admin to add it to SLACK_USER_MAP."
        )
    if (problem := address_problem(email)) is not None:
        source = "SLACK_USER_MAP or the Slack settings' user_map" if linked else "Slack profile"
        raise NotAuthorized(
            f"Your Slack account ({user_id}) is linked to an address that is not a plain "
            f"one: {problem}; ask an admin to correct the link ({source})."
        )
    return email.strip().lower()


def slack_user_id(payload: dict[str, Any]) -> str:
    user = payload.get("user")
    return str(user.get("id") or "") if isinstance(user, dict) else ""
