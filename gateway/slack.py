"""Slack: button clicks (interactivity), the ``/approvals`` command, Socket Mode.

Every request is verified with ``SignatureVerifier`` (SLACK_SIGNING_SECRET;
requests older than five minutes are refused). The clicking Slack user is
mapped to an approver email — SLACK_USER_MAP (JSON, either
``{"U123": "a@x.com"}`` or ``{"a@x.com": "U123"}``), else Slack's
``users.info`` — and the engine's own authorization decides whether that
person may answer. The same handler functions serve HTTP and Socket Mode.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from core.approvals import ApprovalEngine
from core.channels.secrets import secret as _secret
from core.channels.settings import channel_settings
from core.db import Database
from core.errors import CountersignError, InvalidResponse, NotAuthorized
from core.links import approval_link
from gateway.auth import database
from gateway.errors import Unauthenticated, error_response

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

ACTION_DECISIONS = {"countersign_approve": "approve", "countersign_reject": "reject"}
MAX_LISTED = 10


# -- who clicked ---------------------------------------------------------------------


def configured_user_map(db: Database) -> dict[str, str]:
    """Slack user id → email, from SLACK_USER_MAP and the Slack settings' ``user_map``.

    Either direction is accepted: the channel that sends uses email → id.
    """
    pairs: dict[str, Any] = {}
    raw = _secret("SLACK_USER_MAP")
    if raw:
        try:
            loaded = json.loads(raw)
        except ValueError:
            log.warning("slack.user_map_invalid", reason="SLACK_USER_MAP is not JSON")
            loaded = {}
        pairs.update(loaded if isinstance(loaded, dict) else {})
    with db.read() as session:
        _, settings = channel_settings(session, "slack")
    if isinstance(settings.get("user_map"), dict):
        pairs.update(settings["user_map"])
    mapping: dict[str, str] = {}
    for key, value in pairs.items():
        key, value = str(key).strip(), str(value).strip()
        if "@" in key and "@" not in value:
            mapping[value.upper()] = key.lower()
        elif "@" in value:
            mapping[key.upper()] = value.lower()
    return mapping


def _api_url() -> str:
    from slack_sdk import WebClient

    url = os.environ.get("SLACK_API_URL") or WebClient.BASE_URL
    return url if url.endswith("/") else url + "/"


def email_from_slack_api(user_id: str) -> str | None:
    """The user's email from Slack's ``users.info`` (needs users:read.email)."""
    token = _secret("SLACK_BOT_TOKEN")
    if not token:
        return None
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    try:
        response = WebClient(token=token, base_url=_api_url(), timeout=5).users_info(user=user_id)
    except (SlackApiError, OSError) as exc:
        log.warning("slack.users_info_failed", user=user_id, error=str(exc))
        return None
    email = ((response.get("user") or {}).get("profile") or {}).get("email")
    return str(email).lower() if email else None


def email_of(db: Database, user_id: str) -> str:
    # Slack ids are upper case; a map edited by hand may not be.
    email = configured_user_map(db).get(user_id.upper()) or email_from_slack_api(user_id)
    if not email:
        raise NotAuthorized(f"Your Slack account ({user_id}) is not linked to a Countersign "
                            "approver; ask an admin to add it to SLACK_USER_MAP.")
    return email


# -- handlers shared by HTTP and Socket Mode ------------------------------------------


@dataclass
class SlackReply:
    """What to tell the clicking user (an ephemeral message)."""

    text: str
    ok: bool
    response_url: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        body: dict[str, Any] = {"response_type": "ephemeral", "replace_original": False,
                                "text": self.text}
        if self.blocks:
            body["blocks"] = self.blocks
        return body


def _escape(text: str) -> str:
    """Slack mrkdwn needs &, < and > escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def handle_interaction(db: Database, payload: dict[str, Any]) -> SlackReply:
    """A block_actions payload: record the clicked decision as the mapped approver."""
    response_url = payload.get("response_url") if isinstance(payload.get("response_url"), str) else None
    if payload.get("type") != "block_actions":
        return SlackReply("Nothing to do for this interaction.", True, None)
    actions = [a for a in payload.get("actions") or [] if isinstance(a, dict)
               and a.get("action_id") in ACTION_DECISIONS]
    if not actions:
        # e.g. the "Open in dashboard" link button: Slack opens the URL itself.
        return SlackReply("Nothing to do for this button.", True, None)
    action = actions[0]
    decision = ACTION_DECISIONS[action["action_id"]]
    approval_id = str(action.get("value") or "")
    user_id = str((payload.get("user") or {}).get("id") or "")
    try:
        email = email_of(db, user_id)
        approval = ApprovalEngine(db).respond_to_approval(
            approval_id, email, decision, {}, "", channel="slack")
    except InvalidResponse as exc:
        return SlackReply(f"{exc} Answer in the dashboard: {approval_link(approval_id)}",
                          False, response_url)
    except CountersignError as exc:
        return SlackReply(str(exc), False, response_url)
    verb = "approved" if decision == "approve" else "rejected"
    text = f"You {verb} “{_escape(approval.title)}”."
    if approval.status == "pending":
        text += " The request is waiting for other approvers."
    log.info("slack.decided", approval_id=approval_id, approver=email, decision=decision)
    return SlackReply(text, True, response_url)


def handle_command(db: Database, form: dict[str, str]) -> dict[str, Any]:
    """``/approvals``: the caller's open approval requests (ephemeral)."""
    from slack_sdk.models.blocks import ButtonElement, SectionBlock

    try:
        email = email_of(db, form.get("user_id", ""))
    except NotAuthorized as exc:
        return {"response_type": "ephemeral", "text": str(exc)}
    pending = ApprovalEngine(db).list_pending_approvals(email, limit=MAX_LISTED + 1)
    if not pending:
        return {"response_type": "ephemeral", "text": "Nothing is waiting for you."}
    blocks = []
    for approval in pending[:MAX_LISTED]:
        due = f" · due {approval.expires_at:%Y-%m-%d %H:%M} UTC" if approval.expires_at else ""
        text = f"*{_escape(approval.title[:200])}*\n{approval.approval_type}{due}"
        blocks.append(SectionBlock(
            text=text,
            accessory=ButtonElement(text="Open", url=approval_link(approval.id),
                                    action_id=f"countersign_open_{approval.id}"[:255]),
        ).to_dict())
    more = " (showing the first 10)" if len(pending) > MAX_LISTED else ""
    return {"response_type": "ephemeral", "blocks": blocks,
            "text": f"{min(len(pending), MAX_LISTED)} approval(s) waiting for you{more}."}


def handle_socket_request(db: Database, request_type: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """One Socket Mode envelope; returns the ack payload (or None)."""
    if request_type == "interactive":
        reply = handle_interaction(db, payload)
        post_reply(reply)
        return None
    if request_type == "slash_commands":
        return handle_command(db, {k: str(v) for k, v in payload.items()})
    return None


def post_reply(reply: SlackReply) -> None:
    """Send the ephemeral reply to the interaction's response_url."""
    if not reply.response_url:
        return
    from slack_sdk.webhook import WebhookClient

    try:
        WebhookClient(reply.response_url, timeout=5).send_dict(reply.message())
    except OSError as exc:
        log.warning("slack.reply_failed", error=str(exc))


# -- HTTP -----------------------------------------------------------------------------


def verify(raw: bytes, headers: Any) -> None:
    """Refuse a request not signed by Slack or older than five minutes."""
    from slack_sdk.signature import SignatureVerifier

    signing_secret = _secret("SLACK_SIGNING_SECRET")
    if not signing_secret:
        raise Unauthenticated("Slack is not configured here (SLACK_SIGNING_SECRET is not set).")
    try:
        valid = SignatureVerifier(signing_secret).is_valid_request(raw, dict(headers))
    except (ValueError, TypeError):  # a timestamp that is not a number, a body not UTF-8
        valid = False
    if not valid:
        raise Unauthenticated("The Slack signature is missing, wrong or stale.")


def _form(raw: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise InvalidResponse(["(body): not UTF-8 form data"]) from None
    return {k: v[0] for k, v in parsed.items()}


@router.post("/slack/interactivity")
async def interactivity(request: Request, background: BackgroundTasks) -> JSONResponse:
    raw = await request.body()
    try:
        verify(raw, request.headers)
        try:
            payload = json.loads(_form(raw).get("payload", ""))
        except ValueError:
            raise InvalidResponse(["payload: not JSON"]) from None
        if not isinstance(payload, dict):
            raise InvalidResponse(["payload: not a JSON object"])
    except CountersignError as exc:
        return error_response(exc)
    reply = await run_in_threadpool(handle_interaction, database(request), payload)
    # Slack wants an answer within three seconds; the reply goes out afterwards.
    background.add_task(post_reply, reply)
    return JSONResponse(reply.message())


@router.post("/slack/commands")
async def commands(request: Request) -> JSONResponse:
    raw = await request.body()
    try:
        verify(raw, request.headers)
        form = _form(raw)
    except CountersignError as exc:
        return error_response(exc)
    if form.get("ssl_check"):
        return JSONResponse({})
    return JSONResponse(await run_in_threadpool(handle_command, database(request), form))


# -- Socket Mode ----------------------------------------------------------------------


def run_socket_mode(db: Database, stop: threading.Event | None = None) -> None:
    """Serve Slack over Socket Mode (no public URL needed) until ``stop`` is set.

    Needs SLACK_APP_TOKEN (xapp-...) and SLACK_BOT_TOKEN.
    """
    from slack_sdk import WebClient
    from slack_sdk.socket_mode import SocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    app_token, bot_token = _secret("SLACK_APP_TOKEN"), _secret("SLACK_BOT_TOKEN")
    if not app_token or not bot_token:
        raise CountersignError("Socket Mode needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN.")
    web = WebClient(token=bot_token, base_url=_api_url())
    client = SocketModeClient(app_token=app_token, web_client=web)

    def listener(sm_client: SocketModeClient, req: SocketModeRequest) -> None:
        if req.type == "interactive":
            # Slack wants the ack within three seconds; the reply follows by response_url.
            sm_client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            handle_socket_request(db, req.type, req.payload)
            return
        ack = handle_socket_request(db, req.type, req.payload)
        sm_client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=ack))

    client.socket_mode_request_listeners.append(listener)  # type: ignore[arg-type]
    client.connect()
    try:
        (stop or threading.Event()).wait()
    finally:
        client.close()
