"""Non-secret channel settings (``channel_configurations``) and webhook endpoints.

Secrets (tokens, passwords, signing keys) are read from the environment or
``.streamlit/secrets.toml`` by the channel modules, never stored here.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.base.errors import ConfigurationError, quoted
from core.base.secrets import secret
from core.store.tables import ChannelConfiguration, utcnow

CHANNELS = ("email", "slack", "webhook")
SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "key")
WEBHOOK_URL_ENV = "COUNTERSIGN_WEBHOOK_URL"
MAX_RECIPIENT_CHARS = 320


def channel_settings(session: Session, channel: str) -> tuple[bool, dict[str, Any]]:
    """(enabled, settings) of a channel; enabled with no settings when no row exists."""
    with session.no_autoflush:
        row = session.scalars(
            select(ChannelConfiguration).where(ChannelConfiguration.channel == channel)
        ).one_or_none()
    return stored_settings(None if row is None else (row.enabled, row.settings))


def stored_settings(row: tuple[Any, Any] | None) -> tuple[bool, dict[str, Any]]:
    """(enabled, settings) from a channel's stored (enabled, settings) row, read by the
    caller: enabled with no settings when no row exists."""
    if row is None:
        return True, {}
    return bool(row[0]), dict(row[1] or {})


def save_channel_settings(session: Session, channel: str, *, enabled: bool, settings: dict[str, Any]) -> None:
    """Store a channel's settings; refuses anything that looks like a secret."""
    if channel not in CHANNELS:
        raise ConfigurationError(f"Unknown channel {channel!r}; known: {', '.join(CHANNELS)}.")
    secretish = [k for k in settings if any(w in k.lower() for w in SECRET_WORDS)]
    if secretish:
        raise ConfigurationError(
            f"Settings {', '.join(sorted(secretish))} look like secrets; put secrets in the "
            "environment or .streamlit/secrets.toml, never in the database."
        )
    _check_user_map(settings.get("user_map"))
    row = session.scalars(
        select(ChannelConfiguration).where(ChannelConfiguration.channel == channel)
    ).one_or_none()
    if row is None:
        session.add(ChannelConfiguration(channel=channel, enabled=enabled, settings=settings))
    else:
        row.enabled = enabled
        row.settings = dict(settings)
        row.updated_at = utcnow()


def _check_user_map(user_map: Any) -> None:
    """Every address a user map links (either side of a pair, ``{"a@x.com": "U123"}`` or
    ``{"U123": "a@x.com"}``) goes through the one check an address entering anywhere goes
    through (core.identity.addresses): refused, naming the pair, unless plain."""
    from core.identity.addresses import check_address

    if not isinstance(user_map, dict):
        return
    for key, value in user_map.items():
        for side in (key, value):
            if isinstance(side, str) and "@" in side:
                check_address(side, f"user_map[{quoted(key)}]")


def webhook_endpoints(session: Session, approval_config: dict[str, Any] | None = None) -> list[str]:
    """Endpoints that receive outbound events: the environment's, Settings', the approval's."""
    enabled, settings = channel_settings(session, "webhook")
    return endpoints_of(enabled, settings, approval_config)


def endpoints_of(
    enabled: bool, settings: dict[str, Any], approval_config: dict[str, Any] | None = None
) -> list[str]:
    """``webhook_endpoints`` from the webhook channel's stored (enabled, settings), read by
    the caller (the runner's finish path reads them with the workflow's row)."""
    if not enabled:
        return []
    urls: list[str] = []
    urls += [u.strip() for u in os.environ.get(WEBHOOK_URL_ENV, "").split(",") if u.strip()]
    configured = settings.get("urls") or ([settings["url"]] if settings.get("url") else [])
    urls += [str(u).strip() for u in configured if str(u).strip()]
    if approval_config:
        own = (approval_config.get("channel_configs") or {}).get("webhook") or {}
        if isinstance(own, dict) and own.get("url"):
            urls.append(str(own["url"]).strip())
    return [
        u
        for u in dict.fromkeys(urls)
        if u.startswith(("http://", "https://")) and len(u) <= MAX_RECIPIENT_CHARS
    ]


# Whether a person channel is configured is decided here, without its SDK, so the
# approval engine can pick the default channels; the channels' ``configured()`` ask this.
SMTP_PREFIX = "COUNTERSIGN_SMTP_"
SENDGRID_KEY_ENV = "SENDGRID_API_KEY"
SLACK_TOKEN_ENV = "SLACK_BOT_TOKEN"


def email_setting(settings: dict[str, Any], key: str, default: str = "") -> str:
    """An email setting: the stored one, else ``COUNTERSIGN_SMTP_<KEY>``, else ``default``."""
    value = settings.get(key.lower())
    if value not in (None, ""):
        return str(value)
    return os.environ.get(SMTP_PREFIX + key.upper()) or default


def email_provider(settings: dict[str, Any]) -> str:
    """``smtp`` or ``sendgrid``: as set, else SendGrid when its key is present."""
    chosen = str(settings.get("provider") or os.environ.get("COUNTERSIGN_EMAIL_PROVIDER") or "")
    if chosen:
        return chosen.lower()
    return "sendgrid" if secret(SENDGRID_KEY_ENV) else "smtp"


def email_configured(settings: dict[str, Any]) -> bool:
    if email_provider(settings) == "sendgrid":
        return bool(secret(SENDGRID_KEY_ENV))
    return bool(email_setting(settings, "host"))


def slack_configured() -> bool:
    return bool(secret(SLACK_TOKEN_ENV))


def configured_person_channels(session: Session) -> list[str]:
    """Email and Slack where configured and enabled: the "auto" default channels."""
    email_on, email = channel_settings(session, "email")
    slack_on, _ = channel_settings(session, "slack")
    return [
        name
        for name, on, ready in (
            ("email", email_on, email_configured(email)),
            ("slack", slack_on, slack_configured()),
        )
        if on and ready
    ]
