"""What the Gradio approver (gateway.approver_ui) reads and records, as plain
functions of the signed-in user: the inbox, a request's view, its call editor and
answer form, the buttons that apply to it, and the answer itself (channel
``gradio``), so they can be tested without a browser. Messages quoting anything
stored are escaped Markdown (components.text.md).

Every answer is tied to what was shown (``issued_for``: the request, its level and
its call's digest): the page sends what it drew, the HTTP API what ``details``
returned (``shown``), and an API answer that says nothing counts only for the
request as it was first asked (level 1, the proposed call). Once the request has
moved on, the answer is refused as out of date and nothing is recorded
(``core.approvals.edits.record_shown_answer``, as the dashboard and REST)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.text import md
from core.approvals import standing_rules
from core.approvals.edits import changed_arguments, record_shown_answer
from core.approvals.engine import ApprovalEngine
from core.approvals.presentation import RequestView, approve_with_changes_applies, request_view
from core.base.errors import AnswerOutdated, CountersignError, InvalidResponse
from core.base.storable import load_json
from core.definitions.approval import ApprovalConfig
from core.identity import user_tenant
from gateway.approver_form import form_fields, titled
from gateway.approver_view import view_html

if TYPE_CHECKING:
    from core.store.db import Database
    from core.store.tables import ApprovalRequest

UI_DECISIONS = {"Approve": "approve", "Approve with changes": "modify", "Reject": "reject"}
# The button of each decision, as the HTTP API and ``answer`` name it.
DECISION_BUTTONS = {decision: label for label, decision in UI_DECISIONS.items()}
# A veto window's buttons, as on the dashboard: the call runs at the window's end unless vetoed.
VETO_LABELS = {"approve": "Run now", "reject": "Veto"}
AMOUNT = "approved_amount"


def schema_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """An answer prefilled with the schema's defaults (nested objects too)."""
    answer: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if "default" in prop:
            answer[name] = prop["default"]
        elif prop.get("type") == "object" and prop.get("properties"):
            answer[name] = schema_defaults(prop)
    return answer


def inbox(db: Database, user: str) -> list[tuple[str, str]]:
    """(label, approval id) of the user's open requests, most urgent first."""
    rows = ApprovalEngine(db).list_pending_approvals(user, limit=200)
    return [(f"{a.title[:120]} · {a.approval_type} · {a.id[:8]}", a.id) for a in rows]


def _view(db: Database, user: str, approval_id: str) -> RequestView:
    engine = ApprovalEngine(db)
    approval = engine.get(approval_id, tenant=user_tenant(db, user))
    return request_view(approval, engine.responses(approval_id))


def waiting_line(user: str, count: int) -> str:
    return f"Signed in as **{md(user)}** · [sign out](/logout) · {count} waiting"


def details(db: Database, user: str, approval_id: str | None) -> tuple[str, str, dict[str, Any]]:
    """The request (HTML blocks in Markdown), the prefilled answer (JSON text) and its schema."""
    if not approval_id:
        return "Choose a request.", "{}", {}
    approval = ApprovalEngine(db).get(approval_id, tenant=user_tenant(db, user))
    view = request_view(approval, ApprovalEngine(db).responses(approval_id))
    expires = f"{approval.expires_at:%Y-%m-%d %H:%M} UTC" if approval.expires_at else ""
    prefilled = json.dumps(schema_defaults(approval.response_schema), indent=2)
    return view_html(view, expires, approval.proposed_action), prefilled, approval.response_schema


def _budget(view: RequestView) -> bool:
    return view.approval_type == "budget" and view.amount is not None


def call_editor(db: Database, user: str, approval_id: str | None) -> tuple[str, float | None]:
    """The call's arguments now (JSON text; empty without a call) and a budget's amount now.

    A budget's amount argument is not in the editor: the answer form's approved amount
    is the one place the amount is set (as on the dashboard), and ``answer`` keeps the
    argument's value when the editor leaves it out."""
    if not approval_id:
        return "", None
    view = _view(db, user, approval_id)
    arguments = ""
    if view.call_now is not None:
        shown = {
            name: value
            for name, value in view.call_now["arguments"].items()
            if not (_budget(view) and name == view.amount_argument)
        }
        arguments = json.dumps(shown, indent=2, ensure_ascii=False)
    return arguments, view.amount if view.approval_type == "budget" else None


def _can_change(approval: ApprovalRequest, view: RequestView) -> bool:
    return approve_with_changes_applies(view, ApprovalConfig.model_validate(approval.config))


def buttons(db: Database, user: str, approval_id: str) -> list[tuple[str, str]]:
    """(label, decision) of the buttons that apply to the request, as on the dashboard:
    "Approve with changes" only where something may change; a veto window's "Run now"
    and "Veto" in place of Approve and Reject."""
    engine = ApprovalEngine(db)
    approval = engine.get(approval_id, tenant=user_tenant(db, user))
    view = request_view(approval, engine.responses(approval_id))
    labels = VETO_LABELS if view.notice else {}
    return [
        (labels.get(decision, label), decision)
        for label, decision in UI_DECISIONS.items()
        if decision != "modify" or _can_change(approval, view)
    ]


def issued_for(db: Database, user: str, approval_id: str) -> str:
    """What the page shows the request as, carried back with an answer: its id, level and
    the call's digest (JSON text; ``issued_request`` reads the id back)."""
    engine = ApprovalEngine(db)
    approval = engine.get(approval_id, tenant=user_tenant(db, user))
    call = request_view(approval, engine.responses(approval_id)).call_now or {}
    return json.dumps([approval.id, approval.level, call.get("digest")])


def first_issued(db: Database, user: str, approval_id: str) -> str:
    """``issued_for`` of the request as it was first asked: level 1 and the proposed call.
    What an HTTP API answer that names nothing is taken to have been given for."""
    approval = ApprovalEngine(db).get(approval_id, tenant=user_tenant(db, user))
    return json.dumps([approval.id, 0, (approval.proposed_call or {}).get("digest")])


def _issued(text: str | None) -> tuple[str, int, str | None] | None:
    try:
        found = json.loads(text or "")
    except ValueError:
        return None
    if (
        isinstance(found, list)
        and len(found) == 3
        and isinstance(found[0], str)
        and isinstance(found[1], int)
        and isinstance(found[2], str | None)
    ):
        return found[0], found[1], found[2]
    return None


def issued_request(text: str | None) -> str | None:
    """The request an ``issued_for`` text names (None: none)."""
    found = _issued(text)
    return found[0] if found is not None else None


def answer_form_of(db: Database, user: str, approval_id: str | None) -> dict[str, Any]:
    """What the answer form is drawn from: the request's schema and UI schema."""
    if not approval_id:
        return {}
    approval = ApprovalEngine(db).get(approval_id, tenant=user_tenant(db, user))
    return {"schema": approval.response_schema or {}, "ui": approval.ui_schema or {}, "id": approval.id}


def form_drawing(db: Database, user: str, approval_id: str | None) -> dict[str, Any]:
    """``answer_form_of`` with what the page draws beside the fields: the buttons that
    apply and what the request is shown as (``issued_for``), so the form is drawn again
    whenever the request moves on, even when its schema stays the same."""
    form = answer_form_of(db, user, approval_id)
    if approval_id:
        form["buttons"] = buttons(db, user, approval_id)
        form["shown"] = issued_for(db, user, approval_id)
    return form


@dataclass(frozen=True)
class Answered:
    """What became of an answer: the message, and for one refused as out of date, what
    changed since the answer's page or ``details`` showed the request."""

    message: str
    outdated: str | None = None


def refusal(exc: CountersignError, fields: list[Any] | None = None) -> str:
    """A refusal in words, each problem once, named by its field's title where the
    answer form has one ("Approved amount (USD): must be more than 0")."""
    problems = [str(p) for p in getattr(exc, "problems", None) or []]
    if not problems:
        return f"**Refused:** {md(exc)}"
    named = titled(problems, fields or [])
    return "**Refused:** nothing was recorded:" + "".join(f"\n- {md(p)}" for p in named)


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and float(a) == float(b)
    )


def _with_amount(view: RequestView, data: dict[str, Any], approved_amount: Any) -> None:
    """Put the amount field's value (the HTTP API's ``amount``) into the answer: as the
    approved amount when it differs from the amount now. One amount only: when the
    answer's own ``approved_amount`` lowers it to another amount, it is refused in words
    (never one of them silently preferred). On a request that is not a budget it is
    passed on for the engine to judge: refused by name (no call runs with an amount it
    never reads) unless the request's own form asks for an ``approved_amount``."""
    if approved_amount is None:
        return
    given = data.get(AMOUNT)
    if not _budget(view):
        if given is not None and not _same_number(given, approved_amount):
            raise InvalidResponse(
                [f"{AMOUNT}: the answer says {given} and the amount field {approved_amount}"]
            )
        data[AMOUNT] = approved_amount
        return
    if _same_number(approved_amount, view.amount):
        return  # the amount field as it was drawn
    if given is None or _same_number(given, view.amount) or _same_number(given, approved_amount):
        data[AMOUNT] = approved_amount
        return
    raise InvalidResponse(
        [f"{AMOUNT}: the answer approves {given} and the amount field {approved_amount}; give one amount"]
    )


def _moved_on(approval: ApprovalRequest, view: RequestView, shown: tuple[int, str | None]) -> str:
    """What changed since a request was shown at ``shown`` (its level and call digest)."""
    level, digest = shown
    if approval.status != "pending":
        return f"it is {approval.status} now"
    changes = []
    if approval.level != level:
        changes.append(f"it was at level {level + 1} and is at level {approval.level + 1} now")
    if digest != (view.call_now or {}).get("digest"):
        changes.append("an earlier level changed the call")
    return ", and ".join(changes) or "it changed"


def respond(
    db: Database,
    user: str | None,
    approval_id: str | None,
    button: str,
    answer_json: str,
    comment: str,
    arguments_json: str = "",
    approved_amount: float | None = None,
    *,
    allow_for_days: float | None = None,
    allow_when: str | None = None,
    issued_for: str | None = None,
) -> Answered:
    """Record the user's answer (channel ``gradio``); what became of it, in words.

    ``issued_for`` (``issued_for()``: the page's, or the HTTP API's ``shown`` from
    ``details``): the level and call the answer was given for. A request that has
    moved on since refuses the answer (``AnswerOutdated``) instead of counting it as a
    vote on a call the user never saw. Without it (an HTTP API call that names
    nothing), the answer is taken as given for the request as first asked
    (``first_issued``): it counts only while nothing has moved on.

    ``arguments_json`` is the call's argument editor: the arguments whose
    value differs from the call's now are the edit; one deleted from it is
    refused in words (no answer removes an argument; a budget's amount argument,
    which the editor does not show, keeps its value), and nothing is recorded.
    ``approved_amount`` is the HTTP API's amount field (``_with_amount``).
    ``allow_for_days`` (and ``allow_when``, the condition): "approve, and allow
    calls like this" (a standing rule, in the same transaction as the vote;
    ``policies:manage``). Ignored for a rejection.
    """
    if not user:
        return Answered("**Refused:** sign in first.")
    if not approval_id:
        return Answered("**Refused:** choose a request first.")
    decision = UI_DECISIONS.get(button, "approve")
    try:
        data = load_json(answer_json or "{}", "(answer)") if decision != "reject" else {}
        if not isinstance(data, dict):
            raise InvalidResponse(["(answer): must be a JSON object"])
        edited = (
            load_json(arguments_json, "arguments")
            if decision != "reject" and arguments_json.strip()
            else None
        )
    except ValueError as exc:
        return Answered(f"**Refused:** the answer is not valid JSON: {md(exc)}")
    fields: list[Any] = []
    shown: tuple[str, int, str | None] | None = None
    try:
        engine = ApprovalEngine(db)
        approval = engine.get(approval_id, tenant=user_tenant(db, user))
        view = request_view(approval, engine.responses(approval_id))
        fields = form_fields(approval.response_schema, approval.ui_schema)
        if decision == "modify" and not _can_change(approval, view):
            raise InvalidResponse(
                [
                    f"this {view.approval_type} request cannot be approved with changes "
                    "(nothing in it can change): approve or reject it"
                ]
            )
        if decision != "reject":
            if edited is not None:
                if not isinstance(edited, dict):
                    raise InvalidResponse(["arguments: the call's arguments must be a JSON object"])
                if view.call_now is not None:
                    current = view.call_now["arguments"]
                    kept = view.amount_argument if _budget(view) else None
                    if kept and kept not in edited and kept in current:
                        edited = {**edited, kept: current[kept]}
                    changes = changed_arguments(view, edited)
                    if changes:
                        given = data.get("arguments")
                        data["arguments"] = {**(given if isinstance(given, dict) else {}), **changes}
            _with_amount(view, data, approved_amount)
        allowing = allow_for_days is not None and decision != "reject"
        shown = _issued(issued_for if issued_for is not None else first_issued(db, user, approval_id))
        if shown is None or shown[0] != approval_id:
            raise InvalidResponse(["the page does not say which request it showed: choose it again"])
        approval = record_shown_answer(
            db,
            approval_id,
            user,
            decision,
            data,
            comment or "",
            channel="gradio",
            shown=(shown[1], shown[2]),
            allow_for_days=allow_for_days if allowing else None,
            allow_when=((allow_when or "").strip() or None) if allowing else None,
        )
    except AnswerOutdated as exc:
        assert shown is not None
        engine = ApprovalEngine(db)
        now = engine.get(approval_id, tenant=user_tenant(db, user))
        what = _moved_on(now, request_view(now, engine.responses(approval_id)), (shown[1], shown[2]))
        unsaid = (
            ""
            if issued_for is not None
            else " The answer did not say what it was given for (the HTTP API's `shown`, from "
            "details), so it counted only for the request as first asked."
        )
        return Answered(
            f"**Refused:** {md(exc)}{unsaid} Choose the request again (over the HTTP API: read "
            "details again and send its `shown`) to see it as it is now.",
            outdated=what,
        )
    except CountersignError as exc:
        return Answered(refusal(exc, fields))
    rule = f" Calls like this are allowed for {allow_for_days:g} days." if allowing else ""
    return Answered(f"**Recorded.** The request is now {approval.status}.{rule}")


def answer(
    db: Database,
    user: str | None,
    approval_id: str | None,
    button: str,
    answer_json: str,
    comment: str,
    arguments_json: str = "",
    approved_amount: float | None = None,
    *,
    allow_for_days: float | None = None,
    allow_when: str | None = None,
    issued_for: str | None = None,
) -> str:
    """``respond``'s message."""
    return respond(
        db,
        user,
        approval_id,
        button,
        answer_json,
        comment,
        arguments_json,
        approved_amount,
        allow_for_days=allow_for_days,
        allow_when=allow_when,
        issued_for=issued_for,
    ).message


def may_allow(db: Database, user: str | None, approval_id: str | None) -> str | None:
    """``standing_rules.allow_offer`` for the request ``user`` chose (None: not offered)."""
    if not user or not approval_id:
        return None
    approval = ApprovalEngine(db).get(approval_id, tenant=user_tenant(db, user))
    return standing_rules.allow_offer(db, user, approval.tenant, _view(db, user, approval_id).call_now)
