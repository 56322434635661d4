"""Inbound webhooks: another system answers an approval (channel ``webhook``).

Authenticated either by a Standard Webhooks signature (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; secret
COUNTERSIGN_WEBHOOK_IN_SECRET; the timestamp must be within five minutes) —
then the body names the approver — or by an API token, whose user is the
approver. Either way the engine decides whether that approver may answer.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError

from core.api_tokens import authenticate_token
from core.approvals import ApprovalEngine
from core.channels.secrets import secret
from core.errors import InvalidResponse, NotAuthorized
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
        raise Unauthenticated("Signed inbound webhooks are not configured here "
                              f"({SECRET_ENV} is not set); use an API token.")
    try:
        return Webhook(secret).verify(raw, headers)
    except (WebhookVerificationError, ValueError) as exc:  # malformed is refused too, not a crash
        raise Unauthenticated(f"The webhook signature is not valid: {exc}.") from None


def _token_user(request: Request) -> str:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Sign the webhook (Standard Webhooks) or send an API token.")
    try:
        return authenticate_token(database(request), token).user_email
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
    headers = {k.lower(): v for k, v in request.headers.items()}
    signed = any(h in headers for h in SIGNATURE_HEADERS)
    if signed:
        payload = _verified_body(raw, headers)
        token_user = None
    else:
        token_user = _token_user(request)
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidResponse(["(body): not valid JSON"]) from None
    try:
        answer = InboundAnswer.model_validate(payload)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()]
        raise InvalidResponse(problems) from None
    if token_user is not None:
        if answer.approver and answer.approver.strip().lower() != token_user:
            raise NotAuthorized(f"This API token answers as {token_user}, not {answer.approver}.")
        approver = token_user
    else:
        if not answer.approver:
            raise InvalidResponse(["approver: a signed webhook must name the approver"])
        approver = answer.approver
    approval = ApprovalEngine(database(request)).respond_to_approval(
        answer.approval_id, approver, answer.decision, answer.data, answer.comment, channel="webhook")
    return ApprovalOut.of(approval)
