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
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from core import store
from core.approvals import record_response
from core.config import get_settings
from core.errors import CountersignError
from core.models import ApprovalRequest, UsedToken
from gateway.auth import database
from gateway.errors import status_for
from gateway.templating import page

router = APIRouter(include_in_schema=False)

BUTTON_DECISIONS = ("approve", "reject")


def dashboard_approval_url(approval_id: str) -> str:
    """The dashboard's Approval page for one request (deep link)."""
    return f"{get_settings().dashboard_url.rstrip('/')}/approval?id={quote(approval_id)}"


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
                link=dashboard_approval_url(approval_id) if approval_id else None)


@router.get("/email/confirm")
def confirm_page(request: Request, token: str = "") -> Response:
    """Show what the link would decide; decides nothing."""
    from core.links import read_link_token

    db = database(request)
    approval_id: str | None = None
    try:
        claims = read_link_token(token)
        approval_id = claims.approval_id
        with db.read() as session:
            approval = store.get_approval(session, claims.approval_id)
            used = session.get(UsedToken, claims.token_id) is not None
        if used:
            from core.errors import LinkUsed  # type: ignore[attr-defined]

            raise LinkUsed()
    except CountersignError as exc:
        return _refusal(exc, approval_id)
    if needs_form(approval):
        return RedirectResponse(dashboard_approval_url(approval.id), status_code=303)
    if approval.status != "pending":
        return page("result.html", status_code=409, heading="Already decided", error=True,
                    message=f"This request is already {approval.status}"
                            + (f" by {approval.decided_by}." if approval.decided_by else "."),
                    link=dashboard_approval_url(approval.id))
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
    """Spend the token and record the answer in one transaction."""
    from core.links import consume_link_token, read_link_token

    db = database(request)
    approval_id: str | None = None
    try:
        claims = read_link_token(token)
        approval_id = claims.approval_id
        chosen = _decision(claims.decision, decision)
        with db.session() as session:
            approval = store.get_approval(session, claims.approval_id)
            if needs_form(approval):
                return RedirectResponse(dashboard_approval_url(approval.id), status_code=303)
            # Lock order as everywhere: the workflow row, then the approval row.
            if approval.workflow_id:
                store.get_workflow(session, approval.workflow_id, for_update=True)
            approval = store.get_approval(session, claims.approval_id, for_update=True)
            session.refresh(approval)
            consume_link_token(session, claims)
            record_response(session, approval, approver=claims.approver, decision=chosen,
                            data={}, comment=comment.strip(), channel="email")
            outcome, title = approval.status, approval.title
    except CountersignError as exc:
        return _refusal(exc, approval_id)
    verb = "approved" if chosen == "approve" else "rejected"
    message = f"You {verb} “{title}”."
    if outcome == "pending":
        message += " The request is waiting for other approvers."
    return page("result.html", heading="Thank you", message=message, error=False,
                link=dashboard_approval_url(claims.approval_id))


def _decision(from_link: str | None, from_form: str | None) -> str:
    from core.errors import InvalidResponse

    if from_link is not None:
        if from_form not in (None, "", from_link):
            raise InvalidResponse([f"decision: this link can only {from_link}"])
        return from_link
    if from_form not in BUTTON_DECISIONS:
        raise InvalidResponse(["decision: choose approve or reject"])
    return str(from_form)

