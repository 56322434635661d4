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

from core.base.secrets import mask, secret

if TYPE_CHECKING:
    from core.store.db import Database


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
    # Runs the test: given the database and the signed-in user's email (a test
    # message goes to them).
    check: Callable[[Database, str], CheckResult] | None = None
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


def _channel_test(channel: str) -> Callable[[Database, str], CheckResult]:
    """Send a harmless test message through a channel to the signed-in user."""

    def check(db: Database, recipient: str) -> CheckResult:
        from core.base.errors import CountersignError
        from core.channels.registry import test_channel

        try:
            test_channel(db, channel, recipient)
        except CountersignError as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, f"A test {channel} message went to {recipient}.")

    return check


def _model_test(db: Database, _user: str) -> CheckResult:
    """Ask the configured model a one-line question (core.agents.test_connection)."""
    from core.agents import test_connection

    result = test_connection()
    return CheckResult(result.ok, f"{result.model}: {result.message}")


def _env_integration(
    name: str,
    kind: str,
    names: list[str],
    required: list[str],
    secret_names: set[str],
    description: str,
    test: Callable[[Database, str], CheckResult],
) -> Integration:
    env = _EnvIntegration(names, required, secret_names)

    def checked(db: Database, user: str) -> CheckResult:
        if kind == "channel" and not env.configured():
            return CheckResult(False, f"{name} is not configured.")
        return test(db, user)

    return Integration(name, kind, env.shown, env.configured, checked, description)


_REGISTRY: dict[str, Integration] = {}


def register(integration: Integration) -> None:
    """Add or replace the entry of that name."""
    _REGISTRY[integration.name] = integration


def integrations(kind: str | None = None) -> list[Integration]:
    return [i for i in _REGISTRY.values() if kind is None or i.kind == kind]


for _entry in (
    _env_integration(
        "Email (SMTP)",
        "channel",
        [
            "COUNTERSIGN_SMTP_HOST",
            "COUNTERSIGN_SMTP_PORT",
            "COUNTERSIGN_SMTP_USER",
            "COUNTERSIGN_SMTP_PASSWORD",
            "COUNTERSIGN_SMTP_FROM",
            "COUNTERSIGN_SMTP_SECURITY",
        ],
        ["COUNTERSIGN_SMTP_HOST"],
        {"COUNTERSIGN_SMTP_PASSWORD"},
        "Approval emails with signed links.",
        _channel_test("email"),
    ),
    _env_integration(
        "Email (SendGrid)",
        "channel",
        ["SENDGRID_API_KEY", "SENDGRID_API_HOST"],
        ["SENDGRID_API_KEY"],
        {"SENDGRID_API_KEY"},
        "Approval emails through SendGrid's API.",
        _channel_test("email"),
    ),
    _env_integration(
        "Slack",
        "channel",
        ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"],
        ["SLACK_BOT_TOKEN"],
        {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"},
        "Approval messages with buttons.",
        _channel_test("slack"),
    ),
    _env_integration(
        "Webhooks",
        "channel",
        ["COUNTERSIGN_WEBHOOK_URL", "COUNTERSIGN_WEBHOOK_SECRET"],
        ["COUNTERSIGN_WEBHOOK_URL"],
        {"COUNTERSIGN_WEBHOOK_SECRET"},
        "Signed events (Standard Webhooks) to other systems.",
        _channel_test("webhook"),
    ),
    _env_integration(
        "Agent model",
        "model",
        [
            "COUNTERSIGN_MODEL_PROVIDER",
            "COUNTERSIGN_MODEL_ID",
            "COUNTERSIGN_MODEL_API_BASE",
            "COUNTERSIGN_OLLAMA_URL",
            "OPENAI_API_KEY",
            "HF_TOKEN",
        ],
        ["COUNTERSIGN_MODEL_PROVIDER"],
        {"OPENAI_API_KEY", "HF_TOKEN"},
        "The model smolagents agents use (unset: the labelled rehearsal model).",
        _model_test,
    ),
):
    register(_entry)


__all__ = [
    "Integration",
    "CheckResult",
    "register",
    "integrations",
    "masked_url",
    "database_info",
    "check_database",
]
