"""What the gateway tells the clicking Slack user: an ephemeral reply
(``SlackReply``), posted to the click's ``response_url`` after the three-second
acknowledgement, and the dashboard link it may carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from core.approvals.links import approval_link
from core.channels.slack import (
    escape,
)

if TYPE_CHECKING:
    pass

log = structlog.get_logger(__name__)

__all__ = ["SlackReply", "dashboard_link", "post_reply"]


@dataclass
class SlackReply:
    """What to tell the clicking user (an ephemeral message)."""

    text: str
    ok: bool
    response_url: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    # The body of the HTTP answer itself when Slack reads it (a modal's
    # view_submission: ``response_action``); None: the ephemeral message.
    ack: dict[str, Any] | None = None

    def message(self) -> dict[str, Any]:
        """The ephemeral message; its text in a ``verbatim`` section, so Slack links nothing
        in it by itself (a URL an agent wrote into a title stays text); our own links are
        drawn explicitly (``<url|words>``)."""
        body: dict[str, Any] = {"response_type": "ephemeral", "replace_original": False, "text": self.text}
        body["blocks"] = self.blocks or [
            {"type": "section", "text": {"type": "mrkdwn", "text": self.text[:3000] or " ", "verbatim": True}}
        ]
        return body


def dashboard_link(approval_id: str) -> str:
    """Our link to the request in the dashboard, drawn explicitly (replies are verbatim)."""
    return f"<{escape(approval_link(approval_id))}|open the request>"


def post_reply(reply: SlackReply) -> None:
    """Send the ephemeral reply to the interaction's response_url."""
    if not reply.response_url:
        return
    from slack_sdk.webhook import WebhookClient

    try:
        WebhookClient(reply.response_url, timeout=5).send_dict(reply.message())
    except OSError as exc:
        log.warning("slack.reply_failed", error=str(exc))
