"""What the Gradio approver (gateway.approver_ui) reads and records, as plain
functions of the signed-in user: the inbox, a request's view, its call editor and
answer form, and the answer itself (channel ``gradio``), so they can be tested
without a browser. Messages quoting anything stored are escaped Markdown
(components.text.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from components.text import md
from core.approvals import standing_rules
from core.approvals.edits import changed_arguments, record_shown_answer
from core.approvals.engine import ApprovalEngine
from core.approvals.presentation import RequestView, request_view
from core.base.errors import AnswerOutdated, CountersignError, InvalidResponse
from core.base.storable import load_json
from core.identity import user_tenant
from gateway.approver_view import view_html

if TYPE_CHECKING:
    from core.store.db import Database

UI_DECISIONS = {"Approve": "approve", "Approve with changes": "modify", "Reject": "reject"}


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


def call_editor(db: Database, user: str, approval_id: str | None) -> tuple[str, float | None]:
    """The call's arguments now (JSON text; empty without a call) and a budget's amount now."""
    if not approval_id:
        return "", None
    view = _view(db, user, approval_id)
    arguments = (
        json.dumps(view.call_now["arguments"], indent=2, ensure_ascii=False)
        if view.call_now is not None
        else ""
    )
    return arguments, view.amount if view.approval_type == "budget" else None


def issued_for(db: Database, user: str, approval_id: str) -> str:
    """What the page shows the request as, carried back with an answer: its id, level and
    the call's digest (JSON text; ``issued_request`` reads the id back)."""
    engine = ApprovalEngine(db)
    approval = engine.get(approval_id, tenant=user_tenant(db, user))
    call = request_view(approval, engine.responses(approval_id)).call_now or {}
    return json.dumps([approval.id, approval.level, call.get("digest")])


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
    """Record the user's answer (channel ``gradio``); a plain message either way.

    ``issued_for`` (``issued_for()``, from the page): the level and call the page
    showed; a request that has moved on since refuses the answer (``AnswerOutdated``)
    instead of counting it as a vote on a call the user never saw. Without it (the
    HTTP API) the answer is for the request as it is.

    ``arguments_json`` is the call's argument editor: the arguments whose
    value differs from the call's now are the edit; one deleted from it is
    refused in words (no answer removes an argument), and nothing is recorded. ``approved_amount`` is a
    budget's amount field: sent when it differs from the amount asked now.
    ``allow_for_days`` (and ``allow_when``, the condition): "approve, and allow
    calls like this" (a standing rule, in the same transaction as the vote;
    ``policies:manage``). Ignored for a rejection.
    """
    if not user:
        return "**Refused:** sign in first."
    if not approval_id:
        return "**Refused:** choose a request first."
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
        return f"**Refused:** the answer is not valid JSON: {md(exc)}"
    try:
        if edited is not None or approved_amount is not None:
            view = _view(db, user, approval_id)
            if edited is not None and not isinstance(edited, dict):
                raise InvalidResponse(["arguments: the call's arguments must be a JSON object"])
            changes = changed_arguments(view, edited) if edited is not None and view.call_now else {}
            if changes:
                given = data.get("arguments")
                data["arguments"] = {**(given if isinstance(given, dict) else {}), **changes}
            if (
                approved_amount is not None
                and view.approval_type == "budget"
                and view.amount is not None
                and float(approved_amount) != view.amount
            ):
                data["approved_amount"] = approved_amount
        allowing = allow_for_days is not None and decision != "reject"
        shown = _issued(issued_for) if issued_for is not None else None
        if issued_for is not None and (shown is None or shown[0] != approval_id):
            raise InvalidResponse(["the page does not say which request it showed: choose it again"])
        approval = record_shown_answer(
            db,
            approval_id,
            user,
            decision,
            data,
            comment or "",
            channel="gradio",
            shown=(shown[1], shown[2]) if shown is not None else None,
            allow_for_days=allow_for_days if allowing else None,
            allow_when=((allow_when or "").strip() or None) if allowing else None,
        )
    except CountersignError as exc:
        problems = "".join(f"\n- {md(p)}" for p in getattr(exc, "problems", []))
        again = " Choose the request again to see it as it is now." if isinstance(exc, AnswerOutdated) else ""
        return f"**Refused:** {md(exc)}{problems}{again}"
    rule = f" Calls like this are allowed for {allow_for_days:g} days." if allowing else ""
    return f"**Recorded.** The request is now {approval.status}.{rule}"


def may_allow(db: Database, user: str | None, approval_id: str | None) -> str | None:
    """``standing_rules.allow_offer`` for the request ``user`` chose (None: not offered)."""
    if not user or not approval_id:
        return None
    approval = ApprovalEngine(db).get(approval_id, tenant=user_tenant(db, user))
    return standing_rules.allow_offer(db, user, approval.tenant, _view(db, user, approval_id).call_now)
