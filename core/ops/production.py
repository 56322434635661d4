"""With ``COUNTERSIGN_ENV=production`` nothing starts on a development secret.

The dashboard, the gateway and the runner call ``require_production_secrets``
at start: each secret that is missing (so a development default would be
used) or set to a known development value is named, all in one message;
with Slack configured (``SLACK_BOT_TOKEN`` or ``SLACK_APP_TOKEN``), so is
``SLACK_SIGNING_SECRET``.
"""

from __future__ import annotations

import os

from core.base.errors import ConfigurationError
from core.base.secrets import secret

ENVIRONMENT_ENV = "COUNTERSIGN_ENV"
# (variable, what it signs or protects); either of the session names will do.
REQUIRED_SECRETS = (
    (("COUNTERSIGN_SESSION_SECRET", "COUNTERSIGN_SECRET_KEY"), "browser sessions"),
    (("COUNTERSIGN_LINK_SECRETS",), "approval links"),
    (("COUNTERSIGN_SECRETS_KEY",), "tenant secrets"),
)
# Needed only when outgoing webhooks are configured (COUNTERSIGN_WEBHOOK_URL).
WEBHOOK_SECRET = "COUNTERSIGN_WEBHOOK_SECRET"
# Needed only when Slack is configured (a bot or app token): it proves a button click
# came from Slack (gateway.slack.verify); without it every click is refused.
SLACK_SIGNING_SECRET = "SLACK_SIGNING_SECRET"
SLACK_TOKENS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")
DEVELOPMENT_MARKERS = ("development", "change-me", "changeme", "do-not-use")


def production() -> bool:
    return os.environ.get(ENVIRONMENT_ENV, "development").strip().lower() == "production"


def _is_default(value: str) -> bool:
    from core.approvals.links import DEV_SECRET

    lowered = value.lower()
    return DEV_SECRET in value or any(marker in lowered for marker in DEVELOPMENT_MARKERS)


def problems() -> list[str]:
    """What is wrong with the secrets for production: one line per secret."""
    found: list[str] = []
    required = list(REQUIRED_SECRETS)
    if secret("COUNTERSIGN_WEBHOOK_URL"):
        required.append(((WEBHOOK_SECRET,), "outgoing webhooks"))
    if any(secret(name) for name in SLACK_TOKENS):
        required.append(((SLACK_SIGNING_SECRET,), "Slack button clicks"))
    for names, purpose in required:
        value = next((v for v in (secret(name) for name in names) if v), None)
        label = " or ".join(names)
        if value is None and SLACK_SIGNING_SECRET in names:
            found.append(
                f"{label} is not set while Slack is configured ({purpose} cannot be "
                "verified as coming from Slack)"
            )
        elif value is None:
            found.append(f"{label} is not set ({purpose} would use a development default)")
        elif any(_is_default(part) for part in value.split(",")):
            found.append(f"{label} is a development default value ({purpose})")
    return found


def require_production_secrets(component: str) -> None:
    """Refuse to start ``component`` in production while any secret is missing or a default."""
    if not production():
        return
    found = problems()
    if found:
        raise ConfigurationError(
            f"{component} refuses to start with {ENVIRONMENT_ENV}=production: "
            + "; ".join(found)
            + ". Set each to its own random value."
        )
