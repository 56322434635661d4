"""Inbound webhooks: another system answers an approval (channel ``webhook``).

Authenticated either by a Standard Webhooks signature (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; secret
COUNTERSIGN_WEBHOOK_IN_SECRET; the timestamp must be within five minutes) —
then the body names the approver — or by an API token, whose user is the
approver. Either way the engine decides whether that approver may answer.

A signed delivery decides at most once: its ``webhook-id`` is spent in
``used_tokens`` with its vote, so a replay (within the five minutes the
signature stays fresh) is refused with 409 and writes nothing. An answer
naming a ``level`` counts only while the request is at that level
(core.approvals.once). The body is at most 256 KB and 64 levels of JSON, measured
before it is parsed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError

from core.approvals.once import once_key, respond_once
from core.base.errors import InvalidInput, InvalidResponse, NotAuthorized
from core.base.secrets import secret
from core.base.storable import json_integer_too_long, json_too_deep, load_json
from core.identity.api_tokens import authenticate_token, credential_of
from core.identity.permissions import Credential, acting_with
from gateway.auth import database
from gateway.errors import COMMON_RESPONSES, Unauthenticated
from gateway.schemas import ApprovalOut, InboundAnswer

router = APIRouter(tags=["webhooks"])

SECRET_ENV = "COUNTERSIGN_WEBHOOK_IN_SECRET"
MAX_BODY = 256 * 1024
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def webhook_secret() -> str | None:
    return secret(SECRET_ENV)


def _verified_body(raw: bytes, headers: dict[str, str]) -> Any:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    secret = webhook_secret()
    if not secret:
        raise Unauthenticated(
            f"Signed inbound webhooks are not configured here ({SECRET_ENV} is not set); use an API token."
        )
    try:
        return Webhook(secret).verify(raw, headers)
    except (WebhookVerificationError, ValueError) as exc:  # malformed is refused too, not a crash
        raise Unauthenticated(f"The webhook signature is not valid: {exc}.") from None


def _token_user(request: Request) -> Credential:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Sign the webhook (Standard Webhooks) or send an API token.")
    try:
        return credential_of(authenticate_token(database(request), token))
    except NotAuthorized as exc:
        raise Unauthenticated(str(exc)) from None


@router.post(
    "/webhooks/inbound",
    response_model=ApprovalOut,
    responses=COMMON_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": InboundAnswer.model_json_schema()}},
        },
        # Or signed with Standard Webhooks headers instead of a token.
        "security": [{"HTTPBearer": []}],
    },
)
async def inbound(request: Request) -> ApprovalOut:
    """Answer an approval from another system (signed, or with an API token)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidResponse([f"(body): larger than {MAX_BODY} bytes"])
    if deep := json_too_deep(raw):  # before json.loads, which recurses
        raise InvalidInput([deep])
    if long := json_integer_too_long(raw):  # json.loads names no place
        raise InvalidInput([long])
    headers = {k.lower(): v for k, v in request.headers.items()}
    signed = any(h in headers for h in SIGNATURE_HEADERS)
    credential = None
    if signed:
        payload = _verified_body(raw, headers)
    else:
        credential = _token_user(request)
        try:
            payload = load_json(raw)
        except ValueError:
            raise InvalidResponse(["(body): not valid JSON"]) from None
    try:
        answer = InboundAnswer.model_validate(payload)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()]
        raise InvalidResponse(problems) from None
    if credential is not None:
        if answer.approver and answer.approver.strip().lower() != credential.user:
            raise NotAuthorized(f"This API token answers as {credential.user}, not {answer.approver}.")
        approver = credential.user
    else:
        if not answer.approver:
            raise InvalidResponse(["approver: a signed webhook must name the approver"])
        approver = answer.approver
    # A signed delivery decides once (its webhook-id); any answer only at the level it names.
    key = once_key("webhook", headers["webhook-id"]) if signed else None
    with acting_with(credential):  # a token answers within its scopes (approvals:answer)
        approval = respond_once(
            database(request),
            key=key,
            what="This webhook delivery (webhook-id)",
            approval_id=answer.approval_id,
            approver=approver,
            decision=answer.decision,
            data=answer.data,
            comment=answer.comment,
            channel="webhook",
            level=answer.level,
        )
    return ApprovalOut.of(approval)
