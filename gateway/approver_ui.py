"""The Gradio approver UI at ``/approve``: the signed-in user's pending
approvals and the request's JSON-schema answer, validated by the engine.

Sign-in is the gateway's (a session cookie from ``/login``), handed to Gradio
through ``auth_dependency``; without it Gradio answers 401 and the gateway
sends browsers to ``/login``. The handler functions below take the user
explicitly so they can be tested without a browser.
"""

from __future__ import annotations

import html
import json
from typing import Any

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from core.approvals import ApprovalEngine
from core.db import Database
from core.errors import CountersignError, InvalidResponse
from core.tenancy import user_tenant
from gateway.auth import session_user

MOUNT_PATH = "/approve"
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


def details(db: Database, user: str, approval_id: str | None) -> tuple[str, str, dict[str, Any]]:
    """Markdown about one request, the prefilled answer (JSON text) and its schema."""
    if not approval_id:
        return "Choose a request.", "{}", {}
    approval = ApprovalEngine(db).get(approval_id, tenant=user_tenant(db, user))
    lines = [f"### {html.escape(approval.title)}"]
    if approval.description:
        lines.append(html.escape(approval.description))
    lines.append(f"**Type:** {approval.approval_type} · **Status:** {approval.status} · "
                 f"**Approvers:** {html.escape(', '.join(approval.approvers))} "
                 f"(need {approval.threshold})")
    if approval.expires_at:
        lines.append(f"**Expires:** {approval.expires_at:%Y-%m-%d %H:%M} UTC")
    for key, value in approval.context_data.items():
        lines.append(f"- **{html.escape(str(key))}:** {html.escape(json.dumps(value, default=str))}")
    if approval.proposed_action:
        lines.append("**Proposed action:** `" + html.escape(json.dumps(approval.proposed_action,
                                                                       default=str)) + "`")
    prefilled = json.dumps(schema_defaults(approval.response_schema), indent=2)
    return "\n\n".join(lines), prefilled, approval.response_schema


def answer(db: Database, user: str | None, approval_id: str | None, button: str,
           answer_json: str, comment: str) -> str:
    """Record the user's answer (channel ``gradio``); a plain message either way."""
    if not user:
        return "**Refused:** sign in first."
    if not approval_id:
        return "**Refused:** choose a request first."
    decision = UI_DECISIONS.get(button, "approve")
    try:
        data = json.loads(answer_json or "{}") if decision != "reject" else {}
        if not isinstance(data, dict):
            raise InvalidResponse(["(answer): must be a JSON object"])
    except ValueError as exc:
        return f"**Refused:** the answer is not valid JSON: {html.escape(str(exc))}"
    try:
        approval = ApprovalEngine(db).respond_to_approval(
            approval_id, user, decision, data, comment or "", channel="gradio")
    except CountersignError as exc:
        problems = "".join(f"\n- {html.escape(p)}" for p in getattr(exc, "problems", []))
        return f"**Refused:** {html.escape(str(exc))}{problems}"
    return f"**Recorded.** The request is now {approval.status}."


def build(db: Database) -> gr.Blocks:
    def _user(request: gr.Request | None) -> str | None:
        return getattr(request, "username", None) if request is not None else None

    def load(request: gr.Request) -> tuple[str, Any]:
        user = _user(request)
        if not user:
            return "Not signed in.", gr.update(choices=[], value=None)
        choices = inbox(db, user)
        return (f"Signed in as **{html.escape(user)}** · [sign out](/logout) · "
                f"{len(choices)} waiting", gr.update(choices=choices, value=None))

    def show(approval_id: str | None, request: gr.Request) -> tuple[str, str, dict[str, Any]]:
        user = _user(request)
        if not user:
            return "Not signed in.", "{}", {}
        try:
            return details(db, user, approval_id)
        except CountersignError as exc:
            return html.escape(str(exc)), "{}", {}

    def make_handler(button: str) -> Any:
        def handle(approval_id: str | None, answer_json: str, comment: str,
                   request: gr.Request) -> tuple[str, Any]:
            message = answer(db, _user(request), approval_id, button, answer_json, comment)
            user = _user(request)
            choices = inbox(db, user) if user else []
            keep = approval_id if any(value == approval_id for _, value in choices) else None
            return message, gr.update(choices=choices, value=keep)
        return handle

    with gr.Blocks(title="Countersign approvals", analytics_enabled=False) as blocks:
        gr.Markdown("## Your pending approvals")
        who = gr.Markdown(elem_id="cs-who")
        with gr.Row():
            # Choices change per user; the engine, not the widget, decides who may answer.
            choice = gr.Dropdown(label="Approval request", choices=[], elem_id="cs-choice", scale=4,
                                 allow_custom_value=True)
            refresh = gr.Button("Refresh", elem_id="cs-refresh", scale=1)
        info = gr.Markdown(elem_id="cs-details")
        with gr.Row():
            editor = gr.Code(value="{}", language="json", label="Answer (JSON)", elem_id="cs-answer")
            schema = gr.JSON(label="Answer schema", elem_id="cs-schema")
        comment = gr.Textbox(label="Comment", elem_id="cs-comment")
        with gr.Row():
            buttons = [gr.Button(label, elem_id=f"cs-{UI_DECISIONS[label]}",
                                 variant="stop" if label == "Reject" else "primary")
                       for label in UI_DECISIONS]
        result = gr.Markdown(elem_id="cs-result")
        blocks.load(load, inputs=None, outputs=[who, choice], api_name="inbox")
        refresh.click(load, inputs=None, outputs=[who, choice], api_name="refresh")
        choice.change(show, inputs=[choice], outputs=[info, editor, schema], api_name="details")
        for label, button in zip(UI_DECISIONS, buttons, strict=True):
            button.click(make_handler(label), inputs=[choice, editor, comment],
                         outputs=[result, choice], api_name=UI_DECISIONS[label])
    return blocks


class _SignInRedirect:
    """Send a browser without a session to ``/login`` instead of Gradio's bare 401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET" \
                and scope.get("path") in (MOUNT_PATH, MOUNT_PATH + "/"):
            request = Request(scope)
            if session_user(request) is None:
                await RedirectResponse(f"/login?next={MOUNT_PATH}/", status_code=303)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mount(app: FastAPI, db: Database) -> None:
    gr.mount_gradio_app(app, build(db), path=MOUNT_PATH, auth_dependency=session_user,
                        footer_links=[], ssr_mode=False)
    app.add_middleware(_SignInRedirect)
