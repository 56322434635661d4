"""Slack: Block Kit approval messages with buttons, updated in place once decided.

The bot token comes from ``SLACK_BOT_TOKEN``; ``SLACK_API_URL`` points the
client elsewhere (tests use a loopback server). Recipients (emails or group
names) map to Slack user or channel ids through ``SLACK_USER_MAP`` (JSON),
the Settings page's ``user_map``, or ``users.lookupByEmail``.

Buttons carry ``action_id`` ``countersign_approve`` / ``countersign_reject``
with the approval id as value; the gateway's interactivity endpoint handles
the clicks. Agent-written text is escaped so it cannot mention, link or
format (``&``, ``<``, ``>``).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from core.channels.base import (
    ApprovalFacts,
    Deferred,
    Delivery,
    PermanentFailure,
    TemporaryFailure,
)
from core.channels.secrets import mask, secret
from core.links import approval_link

TOKEN_ENV = "SLACK_BOT_TOKEN"
API_URL_ENV = "SLACK_API_URL"
USER_MAP_ENV = "SLACK_USER_MAP"
DEFAULT_API_URL = "https://slack.com/api/"
APPROVE_ACTION = "countersign_approve"
REJECT_ACTION = "countersign_reject"
OPEN_ACTION = "countersign_open"
ACTIONS_BLOCK_ID = "countersign_actions"
METADATA_EVENT = "countersign_approval"
# Block Kit limits.
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
# Errors that retrying cannot fix.
PERMANENT_ERRORS = {
    "users_not_found", "user_not_found", "channel_not_found", "is_archived", "invalid_auth",
    "not_authed", "account_inactive", "token_revoked", "missing_scope", "not_in_channel",
    "invalid_blocks", "invalid_arguments", "msg_too_long", "no_permission",
}
OUTCOME_LABELS = {
    "approved": ":white_check_mark: Approved", "modified": ":white_check_mark: Approved with changes",
    "rejected": ":x: Rejected", "expired": ":hourglass: Expired", "cancelled": ":no_entry_sign: Cancelled",
}


def escape(text: str) -> str:
    """Make agent-written text inert in Slack mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def approval_blocks(approval: ApprovalFacts, *, outcome: str | None = None,
                    decided_by: str | None = None) -> list[Block]:
    """The Block Kit message for an approval; without buttons once it is closed."""
    link = approval_link(approval.id)
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_cut(approval.title or "Approval needed", HEADER_MAX),
                                         emoji=False)),
    ]
    if approval.description:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=_cut(escape(approval.description), SECTION_TEXT_MAX))))
    fields = [MarkdownTextObject(text=_cut(f"*{escape(label)}*\n{escape(value)}", FIELD_TEXT_MAX))
              for label, value in approval.key_facts()[:MAX_FIELDS]]
    if fields:
        blocks.append(SectionBlock(fields=fields))
    action = approval.action_summary()
    if action:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=_cut("*Proposed action*\n" + escape(action), SECTION_TEXT_MAX))))
    open_button = ButtonElement(text=PlainTextObject(text="Open in dashboard"), action_id=OPEN_ACTION,
                                url=link, value=approval.id)
    if outcome is not None:
        who = f" by {escape(decided_by)}" if decided_by else ""
        label = OUTCOME_LABELS.get(outcome, escape(outcome.capitalize()))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=_cut(f"{label}{who}", SECTION_TEXT_MAX))]))
        blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK_ID, elements=[open_button]))
        return blocks
    if approval.needs_form:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text="This request needs a form answer; open it in the dashboard.")]))
        blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK_ID, elements=[open_button]))
        return blocks
    reject_confirm = ConfirmObject(
        title="Reject this request?",
        # Plain text: a confirm dialog's text is mrkdwn by default, where an agent's
        # title could carry links (<https://...|text>) or mentions (<!channel>).
        text=PlainTextObject(text=_cut(f"The workflow will not perform: {approval.title}", 300),
                             emoji=False),
        confirm="Reject", deny="Cancel", style="danger",
    )
    blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK_ID, elements=[
        ButtonElement(text=PlainTextObject(text="Approve"), action_id=APPROVE_ACTION,
                      value=approval.id, style="primary"),
        ButtonElement(text=PlainTextObject(text="Reject"), action_id=REJECT_ACTION,
                      value=approval.id, style="danger", confirm=reject_confirm),
        open_button,
    ]))
    return blocks


def fallback_text(approval: ApprovalFacts, outcome: str | None = None) -> str:
    if outcome:
        return escape(f"{approval.title}: {outcome}")
    return escape(f"Approval needed: {approval.title}")


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
        return bool(secret(TOKEN_ENV))

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
        from core.channels.alerts import ALERT_KIND

        if delivery.kind == ALERT_KIND:
            return self._post_alert(delivery)
        approval = delivery.approval
        if approval is None:
            raise PermanentFailure("Slack messages are only sent for approval requests.")
        client = self._client()
        if delivery.kind == "approval.decided":
            return self._update(client, delivery, approval)
        if not approval.is_open:
            return {"skipped": f"approval already {approval.status}"}
        destination = self.destination(client, delivery.recipient)
        blocks = approval_blocks(approval)
        try:
            response = client.chat_postMessage(
                channel=destination, text=fallback_text(approval), blocks=blocks,
                unfurl_links=False, unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {
                    "notification_id": delivery.notification_id, "approval_id": approval.id}},
            )
        except SlackApiError as exc:
            raise _failure(exc, "posting the message") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        return {"channel": str(response.get("channel") or destination), "ts": str(response.get("ts") or "")}

    def _post_alert(self, delivery: Delivery) -> dict[str, Any]:
        from core.channels.alerts import alert_blocks, alert_facts, alert_text

        facts = alert_facts(delivery)
        client = self._client()
        destination = self.destination(client, delivery.recipient)
        try:
            response = client.chat_postMessage(channel=destination, text=alert_text(facts),
                                               blocks=alert_blocks(facts), unfurl_links=False,
                                               unfurl_media=False)
        except SlackApiError as exc:
            raise _failure(exc, "posting the alert") from exc
        except (SlackClientError, OSError) as exc:
            raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
        return {"channel": str(response.get("channel") or destination), "ts": str(response.get("ts") or "")}

    def _update(self, client: WebClient, delivery: Delivery, approval: ApprovalFacts) -> dict[str, Any]:
        outcome = str(delivery.payload.get("outcome") or approval.status)
        decided_by = delivery.payload.get("decided_by") or approval.decided_by
        blocks = approval_blocks(approval, outcome=outcome, decided_by=decided_by)
        updated = []
        for ref in delivery.prior_refs:
            if not ref.get("channel") or not ref.get("ts"):
                continue
            try:
                client.chat_update(channel=ref["channel"], ts=ref["ts"], blocks=blocks,
                                   text=fallback_text(approval, outcome))
            except SlackApiError as exc:
                if exc.response.get("error") in ("message_not_found", "cant_update_message"):
                    continue  # deleted by someone in Slack; nothing to update
                raise _failure(exc, "updating the message") from exc
            except (SlackClientError, OSError) as exc:
                raise TemporaryFailure(f"Slack is unreachable: {exc}") from exc
            updated.append({"channel": ref["channel"], "ts": ref["ts"]})
        return {"updated": updated}

    def test(self, recipient: str) -> dict[str, Any]:
        client = self._client()
        destination = self.destination(client, recipient)
        try:
            response = client.chat_postMessage(
                channel=destination, text="Countersign test message: Slack delivery works.")
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


__all__ = ["SlackChannel", "approval_blocks", "escape", "APPROVE_ACTION", "REJECT_ACTION", "Deferred"]
