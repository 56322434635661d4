"""With ``COUNTERSIGN_ENV=production`` nothing starts on a development secret.

The dashboard, the gateway and the runner call ``require_production_secrets``
at start: each secret that is missing (so a development default would be
used) or set to a known development value is named, all in one message.
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
    for names, purpose in required:
        value = next((v for v in (secret(name) for name in names) if v), None)
        label = " or ".join(names)
        if value is None:
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
            f"{component} refuses to start with {ENVIRONMENT_ENV}=production: " + "; ".join(found)
            + ". Set each to its own random value.")
