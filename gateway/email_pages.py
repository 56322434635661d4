"""Email approval links: a GET shows a confirmation page, only a POST decides.

Mail scanners and link previews open every link in a message, so opening a
link must never decide anything. The GET checks the signed token (refusing a
tampered, expired or spent one) and shows the request as
``core.approvals.presentation`` defines it (the guarded call's tool and arguments,
the amount in words, what approving changes, the chain of levels, votes and
time left, or a gate's facts) with the buttons; the button POSTs the token
back, and the token is spent and the answer recorded in one transaction
(channel ``email``): either both happen or neither. A link decides only at
the level of the request it was sent for (core.approvals.once).

The link's approver sees the request as they would anywhere else: one of
another tenant answers like an unknown id on the GET as on the POST (a
request a person cannot answer is never shown to them).

The POST must come from the page itself: from this origin, with the page's
CSRF token (bound to the link token) in a hidden field (gateway.browser).

An approving answer may change what is released, on the page itself: a
budget's approved amount (at most the amount asked), and the call's
arguments, one field per argument of the tool's input schema, pre-filled
with the arguments now (``core.approvals.edits``); a choice or flag the call does not
set is drawn "— not set —", chosen, and stays unset unless the approver picks a value,
and one set to a value none of the choices is keeps it. Only what changed is sent
(``{"arguments": {...}}``, ``{"approved_amount": N}``); the engine checks it
against the schema. A refused answer shows the page again with each problem
under its field, the link still unspent. Form requests go to the dashboard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.approvals.edits import (
    AMOUNT,
    GENERAL,
    NOT_SET,
    answer_for,
    argument_fields,
    editable,
    problems_by_field,
    read_amount,
    read_inputs,
)
from core.approvals.engine import ApprovalEngine
from core.approvals.links import approval_link, link_token_spent, read_link_token, respond_with_link
from core.approvals.once import check_issued_for
from core.approvals.presentation import RequestView, needs_fields, plain, request_view
from core.approvals.voting import after_vote
from core.base.errors import CountersignError, InvalidResponse, LinkUsed
from core.identity import user_tenant
from core.identity.issued import check_issued
from gateway.auth import database
from gateway.browser import CSRF_FIELD, link_csrf_token, link_csrf_valid, request_refusal
from gateway.errors import status_for
from gateway.templating import page

if TYPE_CHECKING:
    from core.store.tables import ApprovalRequest

router = APIRouter(include_in_schema=False)

BUTTON_DECISIONS = ("approve", "reject")
# Form field names: each argument of the call is "arg.<name>".
ARGUMENT_FIELD = "arg."
MAX_LENGTHS = {"token": 4000, "decision": 20, "comment": 10_000, CSRF_FIELD: 500}
MAX_VALUE = 100_000


def needs_form(approval: ApprovalRequest) -> bool:
    """A request whose answer needs fields, which a button cannot give."""
    return needs_fields(approval.approval_type, approval.response_schema)


def _refusal(error: CountersignError, approval_id: str | None = None) -> Response:
    headings = {
        "LinkUsed": "This link was already used",
        "LinkExpired": "This link has expired",
        "LinkInvalid": "This link is not valid",
        "AnswerOutdated": "This link is out of date",
    }
    return page(
        "result.html",
        status_code=status_for(error),
        heading=headings.get(type(error).__name__, "Your answer was not recorded"),
        message=str(error),
        error=True,
        link=approval_link(approval_id) if approval_id else None,
    )


def _approval(request: Request, approval_id: str, approver: str) -> ApprovalRequest:
    """The request as the link's approver sees it: one they cannot see (another
    tenant's) answers exactly like an unknown id, on the GET as on the POST,
    whose vote core.approvals.voting refuses the same way (core.store.tenancy)."""
    db = database(request)
    return ApprovalEngine(db).get(approval_id, tenant=user_tenant(db, approver))


def _view(request: Request, approval: ApprovalRequest) -> RequestView:
    return request_view(approval, ApprovalEngine(database(request)).responses(approval.id))


def _amount_text(view: RequestView) -> str:
    if view.amount is None:
        return ""
    return str(int(view.amount)) if float(view.amount).is_integer() else str(view.amount)


def _confirm_page(
    approval: ApprovalRequest,
    view: RequestView,
    *,
    approver: str,
    token: str,
    decision: str | None,
    status_code: int = 200,
    submitted: dict[str, str] | None = None,
    problems: dict[str, list[str]] | None = None,
) -> Response:
    """The request and the form; after a refusal, what was typed and each problem."""
    can_approve = decision in (None, "approve")
    fields = argument_fields(view) if can_approve and editable(view) else []
    budget = can_approve and editable(view) and view.approval_type == "budget" and view.amount is not None
    submitted = submitted or {}
    values = {f.name: submitted.get(ARGUMENT_FIELD + f.name, f.text or "") for f in fields}
    problems = problems or {}
    shown = {f.name for f in fields} | ({AMOUNT} if budget else set())
    general = [
        *problems.get(GENERAL, []),
        *(f"{name}: {m}" for name, ms in problems.items() if name not in shown | {GENERAL} for m in ms),
    ]
    return page(
        "confirm.html",
        status_code=status_code,
        approval=approval,
        approver=approver,
        token=token,
        decision=decision,
        view=view,
        facts=[(label, plain(value)) for label, value in view.facts],
        rows=[
            (row.name, plain(row.now), plain(row.proposed) if row.changed else None) for row in view.arguments
        ],
        changes=[(c["argument"], plain(c["before"]), plain(c["after"])) for c in view.changes],
        fields=fields,
        values=values,
        budget=budget,
        amount=submitted.get(AMOUNT, _amount_text(view)),
        problems=problems,
        general=general,
        comment=submitted.get("comment", ""),
        edited=bool(problems) and any(name in problems for name in values),
        argument_field=ARGUMENT_FIELD,
        not_set=NOT_SET,
        dashboard=approval_link(approval.id),
        csrf_field=CSRF_FIELD,
        csrf_token=link_csrf_token(token),
    )


@router.get("/email/confirm")
def confirm_page(request: Request, token: str = "") -> Response:
    """Show what the link would decide; decides nothing."""
    approval_id: str | None = None
    try:
        claims = read_link_token(token)
        approval_id = claims.approval_id
        approval = _approval(request, claims.approval_id, claims.approver)
        if link_token_spent(database(request), claims.token_id):
            raise LinkUsed()
        check_issued_for(approval, what="This link", level=claims.level)
    except CountersignError as exc:
        return _refusal(exc, approval_id)
    if needs_form(approval):
        return RedirectResponse(approval_link(approval.id), status_code=303)
    if approval.status != "pending":
        return page(
            "result.html",
            status_code=409,
            heading="Already decided",
            error=True,
            message=f"This request is already {approval.status}"
            + (f" by {approval.decided_by}." if approval.decided_by else "."),
            link=approval_link(approval.id),
        )
    return _confirm_page(
        approval, _view(request, approval), approver=claims.approver, token=token, decision=claims.decision
    )


@router.post("/email/confirm")
async def confirm_decision(request: Request) -> Response:
    """Spend the token and record the answer in one transaction (core.approvals.links), when the
    answer came from the confirmation page itself (same origin, its CSRF token)."""
    if (refusal := request_refusal(request)) is not None:
        return page(
            "result.html",
            status_code=403,
            heading="Your answer was not recorded",
            message=refusal,
            error=True,
            link=None,
        )
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    return await run_in_threadpool(_decide, request, fields)


def _decide(request: Request, form: dict[str, str]) -> Response:
    token, comment = form.get("token", ""), form.get("comment", "")
    decision = form.get("decision") or None
    approval_id: str | None = None
    approval: ApprovalRequest | None = None
    view: RequestView | None = None
    try:
        too_long = [
            f"{name}: at most {limit} characters"
            for name, limit in MAX_LENGTHS.items()
            if len(form.get(name, "")) > limit
        ]
        too_long += [
            f"{name}: at most {MAX_VALUE} characters"
            for name, value in form.items()
            if name not in MAX_LENGTHS and len(value) > MAX_VALUE
        ]
        if too_long:
            raise InvalidResponse(too_long)
        claims = read_link_token(token)
        if not link_csrf_valid(token, form.get(CSRF_FIELD)):
            return page(
                "result.html",
                status_code=403,
                heading="Your answer was not recorded",
                message="This answer was not sent from the link's confirmation page (or "
                "the page is more than 12 hours old); open the link from your "
                "email again.",
                error=True,
                link=None,
            )
        approval_id = claims.approval_id
        approval = _approval(request, claims.approval_id, claims.approver)
        # A link sent before its approver's account was removed answers for nobody, not
        # for the account added again since (core.identity.issued); it stays unspent.
        check_issued(
            database(request), claims.approver, claims.issued_at, "this email link", approval_id=approval_id
        )
        if needs_form(approval):
            return RedirectResponse(approval_link(claims.approval_id), status_code=303)
        if claims.decision is None and decision not in BUTTON_DECISIONS:
            raise InvalidResponse(["decision: choose approve or reject"])
        chosen = decision or claims.decision
        data: dict[str, Any] = {}
        if chosen == "approve" and approval.status == "pending":
            view = _view(request, approval)
            inputs = {
                name[len(ARGUMENT_FIELD) :]: value
                for name, value in form.items()
                if name.startswith(ARGUMENT_FIELD)
            }
            changes, problems = read_inputs(view, inputs)
            if problems:
                raise InvalidResponse([f"arguments.{name}: {p}" for name, p in problems.items()])
            _, data = answer_for(
                view, changes=changes, approved_amount=read_amount(form.get(AMOUNT)), tool=form.get("tool")
            )
        # The link's decision: an approval with changes is recorded as "modify" by the engine.
        decided = respond_with_link(
            database(request), token, decision or None, comment=comment.strip(), data=data, channel="email"
        )
    except InvalidResponse as exc:
        if approval is not None and approval.status == "pending" and approval_id is not None:
            claims = read_link_token(token)
            view = view or _view(request, approval)
            return _confirm_page(
                approval,
                view,
                approver=claims.approver,
                token=token,
                decision=claims.decision,
                status_code=422,
                submitted=form,
                problems=problems_by_field(exc.problems, view),
            )
        return _refusal(exc, approval_id)
    except CountersignError as exc:
        return _refusal(exc, approval_id)
    verb = "approved" if (decision or claims.decision) == "approve" else "rejected"
    message = f"You {verb} “{decided.title}”"
    if decided.status == "modified" or (decided.status == "pending" and data):
        done = _view(request, decided)
        what = [f"{c['argument']}: {plain(c['before'])} → {plain(c['after'])}" for c in done.changes]
        message += " with changes" + (f" ({'; '.join(what)})" if what else "")
    message += "."
    if decided.approval_type == "budget" and decided.status in ("approved", "modified"):
        amount = _view(request, decided).amount_text
        message += f" Approved amount: {amount}." if amount else ""
    message += after_vote(decided, (decision or claims.decision) != "reject")
    return page(
        "result.html", heading="Thank you", message=message, error=False, link=approval_link(decided.id)
    )
