"""Slack: button clicks (interactivity), the ``/approvals`` command, Socket Mode.

Every request is verified with ``SignatureVerifier`` (SLACK_SIGNING_SECRET;
requests older than five minutes are refused). The clicking Slack user is
mapped to an approver email — SLACK_USER_MAP (JSON, either
``{"U123": "a@x.com"}`` or ``{"a@x.com": "U123"}``), else Slack's
``users.info`` — and core's rule decides whether that person may answer before
anything is listed or done (``gateway.slack_users.email_of``: a disabled or
removed account is refused ``/approvals`` as its clicks are), and again when the
answer is recorded. The same handler functions serve HTTP and Socket Mode.

The Edit button's modal and its submission are ``gateway.slack_edit``; who
clicked is ``gateway.slack_users``; the reply to the clicking user is
``gateway.slack_replies``.

A click decides at most once and only for what its button was sent for
(core.approvals.once): the button's value names the request's level and the call's
digest, the click is spent in ``used_tokens`` (key: the action's
``action_ts``, the clicking user, the request and level) with its vote, and a
modal by its view id. A replayed click or submission, or one for a level the
request has left, is refused and writes nothing. A payload that is not the
shape Slack sends (``user`` not an object, fields missing, JSON nested
deeper than 64 levels) is refused with 400 before anything acts on it.
Agent text in replies is inert mrkdwn (core.channels.slack.inert).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from core.approvals.engine import ApprovalEngine
from core.approvals.links import approval_link
from core.approvals.once import once_key, respond_once
from core.approvals.voting import after_vote
from core.base.errors import (
    ConfigurationError,
    CountersignError,
    InvalidResponse,
    NotAuthorized,
)
from core.base.secrets import secret as _secret
from core.base.storable import load_json
from core.channels.slack import (
    EDIT_ACTION,
    EDIT_CALLBACK,
    inert,
    read_button_value,
)
from core.identity.verified import vouched
from gateway.auth import database
from gateway.errors import Unauthenticated, error_response

if TYPE_CHECKING:
    from core.store.db import Database
from gateway.slack_edit import handle_submission, open_editor
from gateway.slack_replies import SlackReply, dashboard_link, post_reply
from gateway.slack_users import api_url, email_of, slack_user_id

log = structlog.get_logger(__name__)

__all__ = [
    "SlackReply",
    "commands",
    "handle_command",
    "handle_interaction",
    "handle_socket_request",
    "interactivity",
    "payload_problems",
    "router",
    "run_socket_mode",
    "verify",
]


router = APIRouter(include_in_schema=False)


ACTION_DECISIONS = {"countersign_approve": "approve", "countersign_reject": "reject"}


MAX_LISTED = 10


MAX_FIELD = 3000  # the longest id, value or URL a payload field may hold


# -- handlers shared by HTTP and Socket Mode ------------------------------------------


def _text(value: Any, limit: int = MAX_FIELD) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def payload_problems(payload: Any) -> list[str]:
    """What makes an interaction payload not the shape Slack sends, by field; [] when fine.

    Only what the handlers read is checked; an interaction of another type is fine
    (answered "nothing to do").
    """
    if not isinstance(payload, dict):
        return ["payload: not a JSON object"]
    kind = payload.get("type")
    if not _text(kind, 100):
        return ["payload.type: missing or not text"]
    if kind not in ("block_actions", "view_submission"):
        return []
    problems: list[str] = []
    user = payload.get("user")
    if not isinstance(user, dict):
        problems.append("payload.user: missing or not an object")
    elif not _text(user.get("id"), 100):
        problems.append("payload.user.id: missing or not text")
    for name in ("response_url", "trigger_id"):
        if payload.get(name) is not None and not _text(payload.get(name)):
            problems.append(f"payload.{name}: not text")
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            problems.append("payload.actions: missing or not a list")
            return problems
        for index, action in enumerate(actions):
            if not isinstance(action, dict) or not _text(action.get("action_id"), 255):
                problems.append(f"payload.actions[{index}].action_id: missing or not text")
            elif action["action_id"] in ACTION_DECISIONS or action["action_id"] == EDIT_ACTION:
                for name in ("value", "action_ts"):
                    if not _text(action.get(name)):
                        problems.append(f"payload.actions[{index}].{name}: missing or not text")
    else:
        view = payload.get("view")
        if not isinstance(view, dict):
            problems.append("payload.view: missing or not an object")
        elif view.get("callback_id") == EDIT_CALLBACK and not _text(view.get("id"), 255):
            problems.append("payload.view.id: missing or not text")
    return problems


def handle_interaction(db: Database, payload: dict[str, Any]) -> SlackReply:
    """A block_actions payload (a button) or the edit modal's view_submission."""
    if problems := payload_problems(payload):
        return SlackReply(
            "This interaction is not one Countersign can read: " + inert("; ".join(problems)), False, None
        )
    response_url = payload.get("response_url") if isinstance(payload.get("response_url"), str) else None
    if payload.get("type") == "view_submission":
        return handle_submission(db, payload)
    if payload.get("type") != "block_actions":
        return SlackReply("Nothing to do for this interaction.", True, None)
    actions = [
        a
        for a in payload["actions"]
        if isinstance(a, dict)
        and (a.get("action_id") in ACTION_DECISIONS or a.get("action_id") == EDIT_ACTION)
    ]
    if not actions:
        # e.g. the "Open in dashboard" link button: Slack opens the URL itself.
        return SlackReply("Nothing to do for this button.", True, None)
    action = actions[0]
    user_id = slack_user_id(payload)
    try:
        button = read_button_value(action["value"])
    except ValueError:
        return SlackReply(
            "This button is from a message Countersign no longer answers (it does "
            "not say which level of the request it was sent for); answer the "
            "request from its latest message or in the dashboard.",
            False,
            response_url,
        )
    approval_id = button.approval_id
    if action["action_id"] == EDIT_ACTION:
        return open_editor(
            db, approval_id, user_id, payload.get("trigger_id"), response_url, level=button.level
        )
    decision = ACTION_DECISIONS[action["action_id"]]
    try:
        email = email_of(db, user_id, approval_id=approval_id)  # refuses who may not answer
        with vouched(slack_user_id=user_id.upper()):  # recorded with the vote (core.identity.verified)
            approval = respond_once(
                db,
                key=once_key(
                    "slack-action",
                    approval_id,
                    str(button.level),
                    user_id.upper(),
                    action["action_ts"],
                    action["action_id"],
                ),
                what="This Slack click",
                approval_id=approval_id,
                approver=email,
                decision=decision,
                data={},
                comment="",
                channel="slack",
                level=button.level,
                digest=button.digest,
            )
    except InvalidResponse as exc:
        return SlackReply(
            f"{inert(str(exc))} Answer in the dashboard: {dashboard_link(approval_id)}", False, response_url
        )
    except CountersignError as exc:
        return SlackReply(inert(str(exc)), False, response_url)
    verb = "approved" if decision == "approve" else "rejected"
    text = f"You {verb} “{inert(approval.title)}”." + inert(after_vote(approval, decision == "approve"))
    log.info("slack.decided", approval_id=approval_id, approver=email, decision=decision)
    return SlackReply(text, True, response_url)


def handle_command(db: Database, form: dict[str, str]) -> dict[str, Any]:
    """``/approvals``: the caller's open approval requests (ephemeral). A person who may
    not answer (a disabled or removed account, a role that does not answer) is refused
    before anything is listed, with the message and ``permission.refused`` event a
    click of theirs gets (``email_of``)."""
    from slack_sdk.models.blocks import ButtonElement, MarkdownTextObject, SectionBlock

    try:
        email = email_of(db, form.get("user_id", ""))
    except NotAuthorized as exc:
        return {"response_type": "ephemeral", "text": inert(str(exc))}
    pending = ApprovalEngine(db).list_pending_approvals(email, limit=MAX_LISTED + 1)
    if not pending:
        return {"response_type": "ephemeral", "text": "Nothing is waiting for you."}
    blocks = []
    for approval in pending[:MAX_LISTED]:
        due = f" · due {approval.expires_at:%Y-%m-%d %H:%M} UTC" if approval.expires_at else ""
        text = f"*{inert(approval.title[:200])}*\n{approval.approval_type}{due}"
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=text, verbatim=True),  # nothing auto-linked
                accessory=ButtonElement(
                    text="Open",
                    url=approval_link(approval.id),
                    action_id=f"countersign_open_{approval.id}"[:255],
                ),
            ).to_dict()
        )
    more = " (showing the first 10)" if len(pending) > MAX_LISTED else ""
    return {
        "response_type": "ephemeral",
        "blocks": blocks,
        "text": f"{min(len(pending), MAX_LISTED)} approval(s) waiting for you{more}.",
    }


def handle_socket_request(db: Database, request_type: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """One Socket Mode envelope; returns the ack payload (or None). A modal's
    view_submission is answered in its ack (``response_action``)."""
    if request_type == "interactive":
        reply = handle_interaction(db, payload)
        if reply.ack is not None:
            return reply.ack or None
        post_reply(reply)
        return None
    if request_type == "slash_commands":
        return handle_command(db, {k: str(v) for k, v in payload.items()})
    return None


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


def _malformed(problems: list[str]) -> JSONResponse:
    """400: the payload is not what Slack sends (nothing was done)."""
    return JSONResponse(
        {
            "error": "InvalidPayload",
            "message": "The Slack payload is malformed: " + "; ".join(problems),
            "problems": problems,
        },
        status_code=400,
    )


@router.post("/slack/interactivity")
async def interactivity(request: Request, background: BackgroundTasks) -> Response:
    raw = await request.body()
    try:
        verify(raw, request.headers)
        form = _form(raw)
    except InvalidResponse as exc:
        return _malformed(exc.problems)
    except CountersignError as exc:
        return error_response(exc)
    try:  # measured before it is parsed: json.loads recurses
        payload = load_json(form.get("payload", ""), "payload")
    except ValueError as exc:
        return _malformed([str(exc)])
    if problems := payload_problems(payload):
        return _malformed(problems)
    reply = await run_in_threadpool(handle_interaction, database(request), payload)
    if reply.ack is not None:
        # Slack reads this answer (a modal's response_action); an empty one closes it.
        return JSONResponse(reply.ack) if reply.ack else Response(status_code=200)
    # Slack wants an answer within three seconds; the reply goes out afterwards.
    background.add_task(post_reply, reply)
    return JSONResponse(reply.message())


@router.post("/slack/commands")
async def commands(request: Request) -> JSONResponse:
    raw = await request.body()
    try:
        verify(raw, request.headers)
        form = _form(raw)
    except InvalidResponse as exc:
        return _malformed(exc.problems)
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
        raise ConfigurationError("Socket Mode needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN.")
    web = WebClient(token=bot_token, base_url=api_url())
    client = SocketModeClient(app_token=app_token, web_client=web)

    def listener(sm_client: SocketModeClient, req: SocketModeRequest) -> None:
        payload = req.payload if isinstance(req.payload, dict) else {}
        if req.type == "interactive" and payload.get("type") != "view_submission":
            # Slack wants the ack within three seconds; the reply follows by response_url.
            sm_client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            handle_socket_request(db, req.type, payload)
            return
        ack = handle_socket_request(db, req.type, payload)
        sm_client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=ack))

    client.socket_mode_request_listeners.append(listener)  # type: ignore[arg-type]
    client.connect()
    try:
        (stop or threading.Event()).wait()
    finally:
        client.close()
