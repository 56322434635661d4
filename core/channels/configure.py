"""The seed's ``configure_*_integration`` calls, for both orchestrator facades.

Each call splits what it is given as the rest of Countersign does: non-secret
settings (hosts, ports, senders, endpoints) go to ``channel_configurations``
through ``store_channel_settings``, exactly as the Settings page saves them
(with its event, and its refusal of secret-looking keys); secrets (tokens,
passwords, signing keys) go to this process's environment, under the names
the channels read them from (``SLACK_BOT_TOKEN``, ``SENDGRID_API_KEY``, ...),
and never to the database.

The values are then checked by the channel itself, the same code that reads
them from the environment: the channel must count as configured, the webhook
secret must be a valid signing secret, the SMTP port a number and its
security one the channel knows. A call that fails its check changes nothing
(the environment is restored and no settings are written).

Secrets set here last as long as this process. A runner or dispatcher in
another process (the dashboard, ``python -m core runner``) reads its own
environment or ``.streamlit/secrets.toml``: set them there for those.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from core.base.errors import ConfigurationError
from core.channels.base import PermanentFailure
from core.channels.registry import read_channel_settings, store_channel_settings

if TYPE_CHECKING:
    from core.store.db import Database

SLACK_TOKEN_ENV = "SLACK_BOT_TOKEN"
SLACK_SIGNING_SECRET_ENV = "SLACK_SIGNING_SECRET"
SLACK_APP_TOKEN_ENV = "SLACK_APP_TOKEN"
SENDGRID_KEY_ENV = "SENDGRID_API_KEY"
SMTP_PASSWORD_ENV = "COUNTERSIGN_SMTP_PASSWORD"
WEBHOOK_SECRET_ENV = "COUNTERSIGN_WEBHOOK_SECRET"
# What the email channel does with each value of its ``security`` setting.
SMTP_SECURITY = ("starttls", "ssl", "none")
# The seed's smtp_config keys, and ours, mapped to the email channel's settings.
_SMTP_KEYS = {
    "host": "host",
    "port": "port",
    "username": "user",
    "user": "user",
    "from_email": "from",
    "from": "from",
    "security": "security",
    "timeout": "timeout",
}
_SMTP_FLAGS = ("use_tls", "use_ssl")
_SMTP_SECRETS = ("password",)


@contextlib.contextmanager
def _secrets(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set secrets in the environment; put the old values back if the block fails."""
    given = {name: value for name, value in values.items() if value is not None}
    previous = {name: os.environ.get(name) for name in given}
    os.environ.update(given)
    try:
        yield
    except BaseException:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        raise


def _text(name: str, value: Any, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string.")
    if value != value.strip() or "\n" in value:
        raise ConfigurationError(f"{name} must not hold spaces or line breaks around it.")
    return value


def _store(db: Database, channel: str, new: dict[str, Any], *, enabled: bool, actor: str) -> None:
    _, current = read_channel_settings(db, channel)
    store_channel_settings(db, channel, enabled=enabled, settings={**current, **new}, actor=actor)


def _status(db: Database, channel: str) -> dict[str, Any]:
    from core.channels.registry import channel_status

    return next(s for s in channel_status(db) if s["channel"] == channel)


def configure_slack(
    db: Database,
    *,
    bot_token: str,
    signing_secret: str | None = None,
    app_token: str | None = None,
    user_map: dict[str, str] | None = None,
    enabled: bool = True,
    actor: str = "system",
) -> dict[str, Any]:
    """Slack: the bot token (and signing secret for the gateway's buttons) as secrets;
    ``user_map`` (email -> Slack id) as a setting. Returns the channel's status, masked."""
    from core.channels.slack import SlackChannel

    secrets = {
        SLACK_TOKEN_ENV: _text("bot_token", bot_token),
        SLACK_SIGNING_SECRET_ENV: _text("signing_secret", signing_secret, required=False),
        SLACK_APP_TOKEN_ENV: _text("app_token", app_token, required=False),
    }
    settings: dict[str, Any] = {}
    if user_map is not None:
        if not isinstance(user_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in user_map.items()
        ):
            raise ConfigurationError("user_map must map emails to Slack user or channel ids.")
        settings["user_map"] = dict(user_map)
    with _secrets(secrets):
        _, current = read_channel_settings(db, "slack")
        if not SlackChannel({**current, **settings}).configured():
            raise ConfigurationError(f"Slack is not configured: {SLACK_TOKEN_ENV} is empty.")
        _store(db, "slack", settings, enabled=enabled, actor=actor)
    return _status(db, "slack")


def smtp_settings(smtp_config: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The seed's ``smtp_config`` as the email channel's settings, and its password."""
    unknown = sorted(set(smtp_config) - set(_SMTP_KEYS) - set(_SMTP_FLAGS) - set(_SMTP_SECRETS))
    if unknown:
        raise ConfigurationError(
            f"smtp_config: unknown key(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted({*_SMTP_KEYS, *_SMTP_FLAGS, *_SMTP_SECRETS}))}."
        )
    settings: dict[str, Any] = {"provider": "smtp"}
    for key, value in smtp_config.items():
        if key in _SMTP_KEYS and value is not None:
            settings[_SMTP_KEYS[key]] = value
    if not settings.get("host"):
        raise ConfigurationError("smtp_config: host is required.")
    if "security" not in settings:
        if smtp_config.get("use_ssl"):
            settings["security"] = "ssl"
        elif "use_tls" in smtp_config:
            settings["security"] = "starttls" if smtp_config["use_tls"] else "none"
    security = str(settings.get("security", "starttls")).lower()
    if security not in SMTP_SECURITY:
        raise ConfigurationError(f"smtp_config: security must be one of {', '.join(SMTP_SECURITY)}.")
    if "security" in settings:
        settings["security"] = security
    for key, kind in (("port", int), ("timeout", float)):
        if key in settings:
            try:
                settings[key] = kind(settings[key])
            except (TypeError, ValueError):
                raise ConfigurationError(f"smtp_config: {key} must be a number.") from None
            if settings[key] <= 0:
                raise ConfigurationError(f"smtp_config: {key} must be positive.")
    password = smtp_config.get("password")
    return settings, (_text("smtp_config.password", password) if password is not None else None)


def configure_email(
    db: Database,
    *,
    sendgrid_api_key: str | None = None,
    smtp_config: Mapping[str, Any] | None = None,
    from_email: str | None = None,
    enabled: bool = True,
    actor: str = "system",
) -> dict[str, Any]:
    """Email through SendGrid (the key as a secret) or SMTP (host, port, security,
    user and sender as settings; the password as a secret). Returns the status, masked."""
    from core.channels.email import EmailChannel

    if (sendgrid_api_key is None) == (smtp_config is None):
        raise ConfigurationError("Give either sendgrid_api_key or smtp_config.")
    if smtp_config is not None:
        settings, password = smtp_settings(smtp_config)
        secrets = {SMTP_PASSWORD_ENV: password}
    else:
        settings = {"provider": "sendgrid"}
        secrets = {SENDGRID_KEY_ENV: _text("sendgrid_api_key", sendgrid_api_key)}
    if from_email is not None:
        settings["from"] = _text("from_email", from_email)
    with _secrets(secrets):
        _, current = read_channel_settings(db, "email")
        channel = EmailChannel({**current, **settings})
        if channel.provider != settings["provider"] or not channel.configured():
            raise ConfigurationError(f"Email through {settings['provider']} is not configured.")
        _store(db, "email", settings, enabled=enabled, actor=actor)
    return _status(db, "email")


def configure_webhook(
    db: Database,
    *,
    urls: list[str] | str | None = None,
    secret: str | None = None,
    enabled: bool = True,
    actor: str = "system",
) -> dict[str, Any]:
    """Outbound webhooks: endpoints as settings (an approval may name its own in
    ``channel_configs.webhook.url``), the signing secret (``whsec_...``) as a secret.

    Countersign signs every webhook (Standard Webhooks), so a signing secret must
    be set, here or in the environment. Returns the status, masked.
    """
    from core.channels.webhook import WebhookChannel

    listed = [urls] if isinstance(urls, str) else list(urls or [])
    for url in listed:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"Webhook URL {url!r} must start with http:// or https://.")
    settings: dict[str, Any] = {"urls": listed} if urls is not None else {}
    with _secrets({WEBHOOK_SECRET_ENV: _text("secret", secret, required=False)}):
        try:
            WebhookChannel()._signer()  # the check a delivery makes before it signs
        except PermanentFailure as exc:
            raise ConfigurationError(f"{exc} Pass secret='whsec_...' or set it in the environment.") from None
        _store(db, "webhook", settings, enabled=enabled, actor=actor)
    return _status(db, "webhook")


__all__ = ["configure_email", "configure_slack", "configure_webhook", "smtp_settings"]
