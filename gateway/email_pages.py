"""Email approval links: a GET shows a confirmation page, only a POST decides.

Mail scanners and link previews open every link in a message, so opening a
link must never decide anything. The GET checks the signed token (refusing a
tampered, expired or spent one) and shows the request with buttons; the
button POSTs the token back, and the token is spent and the answer recorded
in one transaction (channel ``email``): either both happen or neither.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from core import store
from core.errors import CountersignError, InvalidResponse, LinkUsed
from core.links import approval_link, is_link_token_used, read_link_token, respond_with_link
from core.models import ApprovalRequest
from gateway.auth import database
from gateway.errors import status_for
from gateway.templating import page

router = APIRouter(include_in_schema=False)

BUTTON_DECISIONS = ("approve", "reject")


def needs_form(approval: ApprovalRequest) -> bool:
    """A request whose answer needs fields, which a button cannot give."""
    return approval.approval_type == "form" or bool(approval.response_schema.get("required"))


def _facts(approval: ApprovalRequest) -> list[tuple[str, str]]:
    facts = [("Type", approval.approval_type)]
    for key, value in list(approval.context_data.items())[:12]:
        facts.append((str(key), value if isinstance(value, str) else json.dumps(value, default=str)))
    return facts


def _refusal(error: CountersignError, approval_id: str | None = None) -> Response:
    headings = {"LinkUsed": "This link was already used", "LinkExpired": "This link has expired",
                "LinkInvalid": "This link is not valid"}
    return page("result.html", status_code=status_for(error),
                heading=headings.get(type(error).__name__, "Your answer was not recorded"),
                message=str(error), error=True,
                link=approval_link(approval_id) if approval_id else None)


def _approval(request: Request, approval_id: str) -> ApprovalRequest:
    with database(request).read() as session:
        return store.get_approval(session, approval_id)


@router.get("/email/confirm")
def confirm_page(request: Request, token: str = "") -> Response:
    """Show what the link would decide; decides nothing."""
    approval_id: str | None = None
    try:
        claims = read_link_token(token)
        approval_id = claims.approval_id
        approval = _approval(request, claims.approval_id)
        with database(request).read() as session:
            if is_link_token_used(session, claims.token_id):
                raise LinkUsed()
    except CountersignError as exc:
        return _refusal(exc, approval_id)
    if needs_form(approval):
        return RedirectResponse(approval_link(approval.id), status_code=303)
    if approval.status != "pending":
        return page("result.html", status_code=409, heading="Already decided", error=True,
                    message=f"This request is already {approval.status}"
                            + (f" by {approval.decided_by}." if approval.decided_by else "."),
                    link=approval_link(approval.id))
    proposed = json.dumps(approval.proposed_action, default=str) if approval.proposed_action else ""
    return page("confirm.html", approval=approval, approver=claims.approver, token=token,
                decision=claims.decision, facts=_facts(approval), proposed=proposed)


@router.post("/email/confirm")
def confirm_decision(
    request: Request,
    token: Annotated[str, Form(max_length=4000)] = "",
    decision: Annotated[str | None, Form(max_length=20)] = None,
    comment: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """Spend the token and record the answer in one transaction (core.links)."""
    approval_id: str | None = None
    try:
        claims = read_link_token(token)
        approval_id = claims.approval_id
        if needs_form(_approval(request, claims.approval_id)):
            return RedirectResponse(approval_link(claims.approval_id), status_code=303)
        if claims.decision is None and decision not in BUTTON_DECISIONS:
            raise InvalidResponse(["decision: choose approve or reject"])
        approval = respond_with_link(database(request), token, decision or None,
                                     comment=comment.strip(), channel="email")
    except CountersignError as exc:
        return _refusal(exc, approval_id)
    verb = "approved" if (decision or claims.decision) == "approve" else "rejected"
    message = f"You {verb} “{approval.title}”."
    if approval.status == "pending":
        message += " The request is waiting for other approvers."
    return page("result.html", heading="Thank you", message=message, error=False,
                link=approval_link(approval.id))
