"""Who an answer verifiably came from, recorded with each vote for auditors.

Every channel proves the approver differently: the dashboard by a signed-in
account, the REST API by a named token, an emailed link by the signed token
issued to its recipient, Slack by the Slack user id whose account is linked,
the CLI by the operating-system user that ran it. ``record_response`` puts
``identity_of(approver, channel)`` in its ``approval.responded`` event (so it
is sealed in the trail with the vote); a channel adds what only it knows
with ``vouched(...)`` around its answer (the Slack user id).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from typing import Any

from core.identity.permissions import current_credential

# What each channel's proof of the approver is (the auditor's wording).
CHANNEL_PROOF = {
    "dashboard": "dashboard account (signed in)",
    "gradio": "dashboard account (Gradio approver page, signed in)",
    "api": "API token",
    "email": "email link recipient (signed link)",
    "slack": "Slack user (linked account)",
    "webhook": "signed webhook delivery",
    "cli": "command line (operating-system user)",
}

_claims: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "countersign_vouched_identity", default=None
)


@contextlib.contextmanager
def vouched(**claims: Any) -> Iterator[None]:
    """Within the block, answers also record ``claims`` (e.g. ``slack_user_id=...``)."""
    token = _claims.set({**(_claims.get() or {}), **claims})
    try:
        yield
    finally:
        _claims.reset(token)


def identity_of(approver: str, channel: str) -> dict[str, Any]:
    """The verified identity behind an answer by ``approver`` through ``channel``."""
    identity: dict[str, Any] = {
        "account": approver,
        "proof": CHANNEL_PROOF.get(channel, f"channel {channel}"),
    }
    credential = current_credential()
    if credential is not None and credential.user == approver:
        identity["api_token"] = credential.name
    if channel == "email":
        identity["link_recipient"] = approver
    if channel == "cli":
        identity["os_user"] = os.environ.get("USER", "unknown")
    identity.update(_claims.get() or {})
    return identity


def describe(identity: dict[str, Any] | None, approver: str, channel: str) -> str:
    """One line an auditor reads, e.g. ``Slack user U0123 (alice@example.com)``."""
    if not identity:
        return f"{approver} via {channel} (identity details not recorded)"
    parts = [str(identity.get("proof", channel))]
    if identity.get("slack_user_id"):
        parts.append(f"Slack user id {identity['slack_user_id']}")
    if identity.get("api_token"):
        parts.append(f"token {identity['api_token']!r}")
    if identity.get("link_recipient"):
        parts.append(f"sent to {identity['link_recipient']}")
    if identity.get("os_user"):
        parts.append(f"OS user {identity['os_user']}")
    return f"{identity.get('account', approver)}: " + ", ".join(parts)


__all__ = ["CHANNEL_PROOF", "vouched", "identity_of", "describe"]
