"""The channels by name, their status for the Settings page, and test sends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.base.errors import ChannelError, ConfigurationError
from core.channels.base import Channel, DeliveryFailure
from core.outbox.settings import (  # configured_person_channels: re-exported
    CHANNELS,
    channel_settings,
    configured_person_channels,
    webhook_endpoints,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database


def build_channels(session: Session) -> dict[str, Channel]:
    """One instance of every channel with its current settings."""
    from core.channels.email import EmailChannel
    from core.channels.slack import SlackChannel
    from core.channels.webhook import WebhookChannel

    return {
        "email": EmailChannel(channel_settings(session, "email")[1]),
        "slack": SlackChannel(channel_settings(session, "slack")[1]),
        "webhook": WebhookChannel(
            channel_settings(session, "webhook")[1], endpoints=webhook_endpoints(session)
        ),
    }


def read_channel_settings(db: Database, name: str) -> tuple[bool, dict[str, Any]]:
    """(enabled, non-secret settings) of one channel, for the Settings page."""
    with db.read() as session:
        return channel_settings(session, name)


def store_channel_settings(
    db: Database, name: str, *, enabled: bool, settings: dict[str, Any], actor: str
) -> None:
    """Save a channel's non-secret settings (secret-looking keys are refused), with an event."""
    from core.outbox.settings import save_channel_settings
    from core.records import rows as store

    with db.session() as session:
        before = channel_settings(session, name)
        save_channel_settings(session, name, enabled=enabled, settings=settings)
        store.append_event(
            session,
            "channel.configured",
            actor,
            before={"enabled": before[0], "settings": before[1]},
            after={"enabled": enabled, "settings": settings},
            data={"channel": name},
        )


def channel_status(db: Database) -> list[dict[str, Any]]:
    """What each channel has configured, secrets masked (never their values)."""
    with db.read() as session:
        channels = build_channels(session)
        result = []
        for name in CHANNELS:
            enabled, settings = channel_settings(session, name)
            status = channels[name].status()
            status.update(enabled=enabled, settings=settings)
            result.append(status)
    return result


def test_channel(db: Database, name: str, recipient: str) -> dict[str, Any]:
    """Send a harmless test message through one channel; raises ChannelError on failure."""
    if name not in CHANNELS:
        raise ConfigurationError(f"Unknown channel {name!r}; known: {', '.join(CHANNELS)}.")
    with db.read() as session:
        channel = build_channels(session)[name]
    try:
        return channel.test(recipient)
    except DeliveryFailure as exc:
        raise ChannelError(f"The {name} test failed: {exc}") from exc


__all__ = [
    "build_channels",
    "channel_status",
    "configured_person_channels",
    "read_channel_settings",
    "store_channel_settings",
    "test_channel",
]
test_channel.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
