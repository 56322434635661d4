"""Slack: Block Kit approval messages with buttons, updated in place once decided.

The bot token comes from ``SLACK_BOT_TOKEN``; ``SLACK_API_URL`` points the
client elsewhere (tests use a loopback server). Recipients (emails or group
names) map to Slack user or channel ids through ``SLACK_USER_MAP`` (JSON),
the Settings page's ``user_map``, or ``users.lookupByEmail``.

This module is the channel (``SlackChannel``: send, update in place, test);
the message and its buttons are drawn by ``core.channels.slack_blocks``, the
Edit modal and its submission by ``core.channels.slack_modal``; the names
callers use are exported from here too. The gateway's interactivity endpoint
handles the clicks.
"""

from __future__ import annotations

import json
import os
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import Block

from core.approvals.reminders import is_reminder_kind
from core.base.secrets import mask, secret
from core.channels.alerts import ALERT_KIND, alert_blocks, alert_facts, alert_text
from core.channels.base import ApprovalFacts, Deferred, Delivery, PermanentFailure, TemporaryFailure
from core.channels.slack_blocks import (
    AMOUNT_BLOCK,
    APPROVE_ACTION,
    ARGUMENT_BLOCK,
    COMMENT_BLOCK,
    EDIT_ACTION,
    EDIT_CALLBACK,
    METADATA_EVENT,
    REJECT_ACTION,
    ButtonValue,
    approval_blocks,
    button_value,
    escape,
    fallback_text,
    inert,
    read_button_value,
)
from core.channels.slack_modal import EditSubmission, edit_modal, read_edit_submission, submission_errors
from core.channels.timers import reminder_notice
from core.outbox.settings import SLACK_TOKEN_ENV, slack_configured

__all__ = [
    "API_URL_ENV",
    "AMOUNT_BLOCK",
    "APPROVE_ACTION",
    "ARGUMENT_BLOCK",
    "COMMENT_BLOCK",
    "DEFAULT_API_URL",
    "EDIT_ACTION",
    "EDIT_CALLBACK",
    "REJECT_ACTION",
    "TOKEN_ENV",
    "USER_MAP_ENV",
    "ButtonValue",
    "Deferred",
    "EditSubmission",
    "SlackChannel",
    "approval_blocks",
    "button_value",
    "edit_modal",
    "escape",
    "fallback_text",
    "inert",
    "read_button_value",
    "read_edit_submission",
    "submission_errors",
]


TOKEN_ENV = SLACK_TOKEN_ENV


API_URL_ENV = "SLACK_API_URL"


USER_MAP_ENV = "SLACK_USER_MAP"


DEFAULT_API_URL = "https://slack.com/api/"


# Errors that retrying cannot fix.
PERMANENT_ERRORS = {
    "users_not_found",
    "user_not_found",
    "channel_not_found",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "not_in_channel",
    "invalid_blocks",
    "invalid_arguments",
    "msg_too_long",
    "no_permission",
}


def _user_map(settings: dict[str, Any]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    raw = secret(USER_MAP_ENV) or ""
    if raw:
        try:
            loaded = json.loads(raw)
        except ValueError as exc:
            raise PermanentFailure(f"{USER_MAP_ENV} is not valid JSON: {exc}") from exc
        if isinstance(loaded, dict):
            mapping.update({str(k).lower(): str(v) for k, v in loaded.items()})
    configured = settings.get("user_map")
    if isinstance(configured, dict):
        mapping.update({str(k).lower(): str(v) for k, v in configured.items()})
    return mapping


class SlackChannel:
    name = "slack"

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self._resolved: dict[str, str] = {}

    def _client(self) -> WebClient:
        token = secret(TOKEN_ENV)
        if not token:
            raise PermanentFailure(f"Slack is not configured: set {TOKEN_ENV}.")
        base_url = os.environ.get(API_URL_ENV) or DEFAULT_API_URL
        if not base_url.endswith("/"):
            base_url += "/"
        return WebClient(token=token, base_url=base_url, timeout=15)

    def configured(self) -> bool:
        return slack_configured()

    def status(self) -> dict[str, Any]:
        return {
            "channel": self.name,
            "configured": self.configured(),
            TOKEN_ENV: mask(secret(TOKEN_ENV)),
            API_URL_ENV: os.environ.get(API_URL_ENV) or DEFAULT_API_URL,
            "mapped_recipients": sorted(_user_map(self.settings)),
        }

    def destination(self, client: WebClient, recipient: str) -> str:
        """The Slack user or channel id for a recipient."""
        key = recipient.strip().lower()
        mapped = _user_map(self.settings).get(key)
        if mapped:
            return mapped
        if key in self._resolved:
            return self._resolved[key]
        if "@" not in key:
            raise PermanentFailure(
                f"No Slack destination for {recipient!r}: add it to {USER_MAP_ENV} or the Slack settings."
            )
        try:
            found = client.users_lookupByEmail(email=key)
        except SlackApiError as exc:
            raise _failure(exc, f"looking up {recipient}") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        user_id = str((found.get("user") or {}).get("id") or "")
        if not user_id:
            raise PermanentFailure(f"Slack has no user with the email {recipient}.")
        self._resolved[key] = user_id
        return user_id

    def send(self, delivery: Delivery) -> dict[str, Any]:

        if delivery.kind == ALERT_KIND:
            return self._post_alert(delivery)
        approval = delivery.approval
        if approval is None:
            raise PermanentFailure("Slack messages are only sent for approval requests.")
        client = self._client()
        if delivery.kind == "approval.decided":
            return self._update(client, delivery, approval)
        if is_reminder_kind(delivery.kind):  # the message sent earlier, updated in place
            if not approval.is_open:
                return {"skipped": f"approval already {approval.status}"}
            blocks = approval_blocks(approval, reminder=reminder_notice(delivery.payload))
            return {
                "updated": self._update_refs(client, delivery.prior_refs, blocks, fallback_text(approval))
            }
        if not approval.is_open:
            return {"skipped": f"approval already {approval.status}"}
        destination = self.destination(client, delivery.recipient)
        blocks = approval_blocks(approval)
        try:
            response = client.chat_postMessage(
                channel=destination,
                text=fallback_text(approval),
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": METADATA_EVENT,
                    "event_payload": {
                        "notification_id": delivery.notification_id,
                        "approval_id": approval.id,
                    },
                },
            )
        except SlackApiError as exc:
            raise _failure(exc, "posting the message") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        return {"channel": str(response.get("channel") or destination), "ts": str(response.get("ts") or "")}

    def _post_alert(self, delivery: Delivery) -> dict[str, Any]:

        facts = alert_facts(delivery)
        client = self._client()
        destination = self.destination(client, delivery.recipient)
        try:
            response = client.chat_postMessage(
                channel=destination,
                text=alert_text(facts),
                blocks=alert_blocks(facts),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise _failure(exc, "posting the alert") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        return {"channel": str(response.get("channel") or destination), "ts": str(response.get("ts") or "")}

    def _update(self, client: WebClient, delivery: Delivery, approval: ApprovalFacts) -> dict[str, Any]:
        outcome = str(delivery.payload.get("outcome") or approval.status)
        decided_by = delivery.payload.get("decided_by") or approval.decided_by
        blocks = approval_blocks(approval, outcome=outcome, decided_by=decided_by)
        return {
            "updated": self._update_refs(
                client, delivery.prior_refs, blocks, fallback_text(approval, outcome)
            )
        }

    def _update_refs(
        self, client: WebClient, refs: list[dict[str, Any]], blocks: list[Block], text: str
    ) -> list[dict[str, str]]:
        """``chat.update`` every message in ``refs``; those updated."""
        updated = []
        for ref in refs:
            if not ref.get("channel") or not ref.get("ts"):
                continue
            try:
                client.chat_update(channel=ref["channel"], ts=ref["ts"], blocks=blocks, text=text)
            except SlackApiError as exc:
                if exc.response.get("error") in ("message_not_found", "cant_update_message"):
                    continue  # deleted by someone in Slack; nothing to update
                raise _failure(exc, "updating the message") from exc
            except (SlackClientError, OSError) as exc:
                raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
            updated.append({"channel": ref["channel"], "ts": ref["ts"]})
        return updated

    def test(self, recipient: str) -> dict[str, Any]:
        client = self._client()
        destination = self.destination(client, recipient)
        try:
            response = client.chat_postMessage(
                channel=destination, text="Countersign test message: Slack delivery works."
            )
        except SlackApiError as exc:
            raise _failure(exc, "sending the test message") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        return {"channel": response.get("channel"), "ts": response.get("ts")}


def _failure(exc: SlackApiError, doing: str) -> Exception:
    error = str(exc.response.get("error") or "unknown_error")
    message = f"Slack refused {doing}: {error}"
    if error == "ratelimited":
        return TemporaryFailure(message)
    if error in PERMANENT_ERRORS:
        return PermanentFailure(message)
    return TemporaryFailure(message)
