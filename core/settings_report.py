"""What the Settings page shows: the database, channels and model providers,
each with its secrets masked and a test.

Other areas extend this by registering an ``Integration`` (``register``):
a channel or agent module that knows how to test itself replaces the
default entry of the same name, whose test only says "not configured" or
that no test exists yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.channels.secrets import mask, secret

if TYPE_CHECKING:
    from core.db import Database


@dataclass
class CheckResult:
    ok: bool
    message: str


@dataclass
class Integration:
    """One configurable thing: its settings as shown (secrets masked) and a test."""

    name: str
    kind: str  # "channel" or "model"
    # Setting name -> shown value (secrets already masked).
    shown: Callable[[], dict[str, str]]
    configured: Callable[[], bool]
    check: Callable[[], CheckResult] | None = None
    description: str = ""


def masked_url(url: str) -> str:
    """A database URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  (not a URL at all: show nothing of it)
        return "(unreadable URL)"


def database_info(db: Database) -> dict[str, str]:
    return {"URL": masked_url(db.url), "Dialect": db.dialect}


def check_database(db: Database) -> CheckResult:
    """A ``SELECT 1`` through the application's engine."""
    try:
        with db.engine.connect() as conn:
            value = conn.execute(text("SELECT 1")).scalar()
    except Exception as exc:  # noqa: BLE001  (any failure is the answer to the test)
        return CheckResult(False, f"The database did not answer: {exc}")
    if value != 1:
        return CheckResult(False, f"SELECT 1 returned {value!r}")
    return CheckResult(True, "The database answered SELECT 1.")


@dataclass
class _EnvIntegration:
    """Default entry: configured when any of ``required`` is set."""

    names: list[str]
    required: list[str]
    secret_names: set[str] = field(default_factory=set)

    def shown(self) -> dict[str, str]:
        values = {}
        for name in self.names:
            value = secret(name)
            values[name] = mask(value) if name in self.secret_names else (value or "(not set)")
        return values

    def configured(self) -> bool:
        return any(secret(name) for name in self.required)


def _env_integration(name: str, kind: str, names: list[str], required: list[str],
                     secret_names: set[str], description: str) -> Integration:
    env = _EnvIntegration(names, required, secret_names)

    def untested() -> CheckResult:
        if not env.configured():
            return CheckResult(False, f"{name} is not configured.")
        return CheckResult(False, f"{name} is configured, but no test is available for it yet.")

    return Integration(name, kind, env.shown, env.configured, untested, description)


_REGISTRY: dict[str, Integration] = {}


def register(integration: Integration) -> None:
    """Add or replace the entry of that name."""
    _REGISTRY[integration.name] = integration


def integrations(kind: str | None = None) -> list[Integration]:
    return [i for i in _REGISTRY.values() if kind is None or i.kind == kind]


for _entry in (
    _env_integration("Email (SMTP)", "channel",
                     ["COUNTERSIGN_SMTP_HOST", "COUNTERSIGN_SMTP_PORT", "COUNTERSIGN_SMTP_USER",
                      "COUNTERSIGN_SMTP_PASSWORD", "COUNTERSIGN_SMTP_FROM",
                      "COUNTERSIGN_SMTP_SECURITY"],
                     ["COUNTERSIGN_SMTP_HOST"], {"COUNTERSIGN_SMTP_PASSWORD"},
                     "Approval emails with signed links."),
    _env_integration("Email (SendGrid)", "channel", ["SENDGRID_API_KEY", "SENDGRID_API_HOST"],
                     ["SENDGRID_API_KEY"], {"SENDGRID_API_KEY"},
                     "Approval emails through SendGrid's API."),
    _env_integration("Slack", "channel",
                     ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"],
                     ["SLACK_BOT_TOKEN"],
                     {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"},
                     "Approval messages with buttons."),
    _env_integration("Webhooks", "channel", ["COUNTERSIGN_WEBHOOK_URL", "COUNTERSIGN_WEBHOOK_SECRET"],
                     ["COUNTERSIGN_WEBHOOK_URL"], {"COUNTERSIGN_WEBHOOK_SECRET"},
                     "Signed events (Standard Webhooks) to other systems."),
    _env_integration("Agent model", "model",
                     ["COUNTERSIGN_MODEL_PROVIDER", "COUNTERSIGN_MODEL_ID",
                      "COUNTERSIGN_MODEL_API_BASE", "OPENAI_API_KEY", "HF_TOKEN"],
                     ["COUNTERSIGN_MODEL_PROVIDER"], {"OPENAI_API_KEY", "HF_TOKEN"},
                     "The model smolagents agents use (unset: the labelled rehearsal model)."),
):
    register(_entry)


__all__ = ["Integration", "CheckResult", "register", "integrations", "masked_url",
           "database_info", "check_database"]
